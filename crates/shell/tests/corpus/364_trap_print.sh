trap 'echo x' EXIT
trap
