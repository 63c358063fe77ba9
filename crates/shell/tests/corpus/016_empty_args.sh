set -- "" a ""
echo $#
for a in "$@"; do echo "[$a]"; done
e=
set -- $e "$e"
echo $#
