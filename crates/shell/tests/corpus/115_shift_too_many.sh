set -- a
shift 3
echo not reached
