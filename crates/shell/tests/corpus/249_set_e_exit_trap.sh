set -e
trap 'echo "trap status $?"' EXIT
false
