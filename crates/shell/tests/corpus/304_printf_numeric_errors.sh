printf '%d\n' abc
echo "status $?"
printf '%d\n' "'A"
printf '%d %d\n' 0x10 010
