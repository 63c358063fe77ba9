echo one > r.txt
echo two >> r.txt
cat r.txt
echo three > r.txt
cat r.txt
