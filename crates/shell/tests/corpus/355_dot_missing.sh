. ./nope.sh
echo unreachable
