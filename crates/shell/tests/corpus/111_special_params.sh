set -- one two three
echo "$# $1 $3"
echo "$*"
f() { echo "$0"; }
f
true; echo $?
false; echo $?
