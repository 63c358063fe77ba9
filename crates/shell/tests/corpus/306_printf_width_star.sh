printf '%*s|\n' 6 x
printf '%-*s|\n' 4 y
printf '%.*s|\n' 2 abcdef
