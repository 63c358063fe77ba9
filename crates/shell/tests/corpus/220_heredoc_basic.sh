cat <<EOF
line 1
  $HOME
EOF
