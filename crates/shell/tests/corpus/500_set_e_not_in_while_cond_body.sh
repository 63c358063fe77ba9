set -e
i=0
while [ $i -lt 3 ] && true; do i=$((i+1)); done
echo "loop done $i"
until false; do break; done
echo "until done"
