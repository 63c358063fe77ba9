./nope
echo "status $?"
/no/such/prog_xyz
echo "status $?"
