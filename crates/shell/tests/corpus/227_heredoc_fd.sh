cat 0<<EOF
fd zero
EOF
