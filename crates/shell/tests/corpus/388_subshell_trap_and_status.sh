( trap 'echo "sub trap $?"' EXIT; exit 5 )
echo "parent sees $?"
