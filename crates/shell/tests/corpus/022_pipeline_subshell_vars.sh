x=0
echo 5 | read x
echo "x=$x"
echo 1 | { read y; echo "y=$y"; }
