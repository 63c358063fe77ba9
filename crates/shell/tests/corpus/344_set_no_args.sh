v1=a v2='b c'
set | grep '^v[12]='
