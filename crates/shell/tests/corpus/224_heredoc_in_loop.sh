for i in 1 2; do
  cat <<EOF
iter $i
EOF
done
