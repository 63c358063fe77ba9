sh ./missing.sh
echo "status $?"
