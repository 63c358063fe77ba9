greet() {
  cat <<EOF
Hello, $1!
  indented
EOF
}
greet world
greet "kiln user"
