[ 3 -lt 5 ] && echo lt
[ 5 -le 5 ] && echo le
[ 7 -gt 5 ] && echo gt
[ 5 -ge 6 ] || echo not-ge
[ 10 -eq 10 ] && echo eq
[ 10 -ne 1 ] && echo ne
[ -3 -lt 2 ] && echo neg
