exec < a.txt
read first
read second
echo "$first/$second"
