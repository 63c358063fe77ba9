printf '%s|%5s|%-5s|%.2s\n' abc def ghi jklmn
printf '%d %i %5d %-5d| %05d %+d\n' 42 -7 3 4 5 6
printf '%x %X %o %#x %#o\n' 255 255 8 255 8
printf '%c%c\n' hello world
printf '%%literal\n'
