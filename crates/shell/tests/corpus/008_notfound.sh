nosuchcmd arg
echo $?
