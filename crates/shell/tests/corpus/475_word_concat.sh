a=1; b=2
echo ${a}x${b} "$a"'$b'$b pre-${a}-post
