printf '\101\102\n'
printf 'a\377b' | od -An -tx1
x=$(printf 'q\376r'); printf %s "$x" | od -An -tx1
echo "${#x}"
