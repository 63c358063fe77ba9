> created.txt
ls created.txt
x=5 > other.txt
echo $x
