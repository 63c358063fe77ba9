x=$(seq 1 5000 | tail -n 1)
echo $x
