IFS=,
x="a,b"
echo "$x" $x
set -- $x
echo "$1+$2"
