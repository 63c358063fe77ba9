x='a"b'"c'd"
echo "$x" '$x' "\$x" "${x}"
set -- "$x" 'q q'
printf '<%s>' "$@"; echo
