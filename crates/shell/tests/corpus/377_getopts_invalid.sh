set -- -q
getopts ab o
echo "o=$o status=$?"
