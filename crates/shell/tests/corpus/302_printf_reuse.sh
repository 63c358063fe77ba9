printf '%s=%s\n' a 1 b 2 c
printf '[%s]\n'
printf 'no args\n'
