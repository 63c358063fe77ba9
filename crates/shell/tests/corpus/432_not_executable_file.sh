: > plain.txt
./plain.txt
echo "status $?"
