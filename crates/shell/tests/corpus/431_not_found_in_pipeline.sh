nosuchcmd_q | cat
echo "status $?"
