sum=0
for n in $(seq 1 100); do sum=$((sum + n)); done
echo $sum
