e=
[ -z $e ] && echo "unquoted empty"
[ "$e" = "" ] && echo "quoted empty"
