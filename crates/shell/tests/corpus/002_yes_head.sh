yes | head -n1
echo $?
