i=0
while :; do i=$((i+1)); echo $i; done | head -n 3
echo after
