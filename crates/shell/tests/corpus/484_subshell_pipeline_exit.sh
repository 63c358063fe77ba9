(echo a; exit 1) | cat
echo "status $?"
