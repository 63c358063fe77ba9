test; echo $?
test ""; echo $?
test -z; echo $?
[ = ]; echo $?
