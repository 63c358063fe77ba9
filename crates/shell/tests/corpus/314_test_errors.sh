[ 1 -eq a ]
echo "status $?"
[ 1 = 1
echo "status $?"
