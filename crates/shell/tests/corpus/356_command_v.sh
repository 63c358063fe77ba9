f() { :; }
command -v echo
command -v f
command -v cd
command -v nonexistent_cmd_xyz || echo "status $?"
