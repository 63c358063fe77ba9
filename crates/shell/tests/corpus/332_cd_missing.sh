cd nope
echo "status $?"
pwd
