hash
echo ok
