while IFS=: read -r user rest; do echo "$user"; done <<EOF2
root:x:0:0
daemon:x:1:1
EOF2
