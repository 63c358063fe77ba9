{ read a; read b; } < a.txt
echo "$b $a"
