cat > hd.txt <<EOF
written
EOF
cat hd.txt
