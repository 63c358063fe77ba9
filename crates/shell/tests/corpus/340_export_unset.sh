export E1=one
sh -c 'echo ${E1-unset}'
unset E1
sh -c 'echo ${E1-unset}'
x=1; unset x; echo ${x-gone}
