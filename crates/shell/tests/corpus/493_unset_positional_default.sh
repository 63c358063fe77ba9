echo "${1:-no-arg}"
set -- given
echo "${1:-no-arg}"
