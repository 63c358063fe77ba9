x='*.txt'
echo "$x"
echo $x
