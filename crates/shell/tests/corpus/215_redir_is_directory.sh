echo x > dir
echo "status $?"
