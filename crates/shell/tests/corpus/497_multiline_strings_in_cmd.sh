echo "first
second"
