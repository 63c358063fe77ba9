trap 'echo never' EXIT
trap - EXIT
echo done
