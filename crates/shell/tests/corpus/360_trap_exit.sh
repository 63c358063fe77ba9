trap 'echo cleanup' EXIT
echo main
