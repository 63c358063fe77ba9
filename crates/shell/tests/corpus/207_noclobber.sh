set -C
echo first > nc.txt
echo second > nc.txt
echo "status $?"
echo third >| nc.txt
cat nc.txt
