f() { :; }
type echo
type f
type exit
type nonexistent_cmd_xyz
echo "status $?"
