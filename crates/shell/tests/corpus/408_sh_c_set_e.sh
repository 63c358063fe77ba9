sh -ec 'false; echo no'
echo "status $?"
