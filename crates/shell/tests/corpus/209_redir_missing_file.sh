cat < missing.txt
echo "status $?"
echo x > nodir/file
echo "status $?"
