x="  a   b	c
d  "
set -- $x
echo $# "$1|$4"
