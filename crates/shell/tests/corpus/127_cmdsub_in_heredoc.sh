cat <<EOF
today is $(echo sunday) and `echo also`
EOF
