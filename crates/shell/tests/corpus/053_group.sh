{ echo a; echo b; } > g.txt
cat g.txt
{ x=5; }; echo $x
