v="line1
line2"
echo "$v"
echo $v
