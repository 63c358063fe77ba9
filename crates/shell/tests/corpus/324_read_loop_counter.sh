n=0
while read -r line; do n=$((n+1)); done < a.txt
echo $n
