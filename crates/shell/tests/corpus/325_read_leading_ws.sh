read a <<EOF
    padded   value   
EOF
echo "[$a]"
