echo x | { read v; exit 7; }
echo "status $?"
