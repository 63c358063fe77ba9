trap 'echo "exiting with $?"' EXIT
false
