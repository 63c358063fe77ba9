i=0
: $((i+=5)) $((i*=2))
echo $i
echo $((j=7)) $j
