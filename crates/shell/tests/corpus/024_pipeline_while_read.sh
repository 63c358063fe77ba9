printf '1 a\n2 b\n3 c\n' | while read n l; do echo "$l=$n"; done
