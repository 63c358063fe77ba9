printf 'echo "script got $1"\nexit 4\n' > s.sh
sh s.sh arg
echo "status $?"
