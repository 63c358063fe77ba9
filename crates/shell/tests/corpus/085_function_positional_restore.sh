set -- a b
f() { set -- x; echo $1; }
f
echo $1 $2
