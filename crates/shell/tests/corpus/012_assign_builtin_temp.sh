v=orig
v=temp true
echo $v
v=special :
echo $v
