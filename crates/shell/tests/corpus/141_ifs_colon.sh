IFS=:
x="a:b::c:"
set -- $x
echo $#
for f in "$@"; do echo "[$f]"; done
