printf 'echo before\nreturn 3\necho after\n' > r.sh
. ./r.sh
echo "status $?"
