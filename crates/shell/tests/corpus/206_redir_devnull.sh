echo gone > /dev/null
cat /dev/null
ls nope 2>/dev/null
echo "status $?"
