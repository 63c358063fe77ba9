f() {
  cat <<EOF
v=$1
EOF
}
f arg
