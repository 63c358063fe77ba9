printf 'tab\there\nnl\\back\n'
printf '%b\n' 'a\tb' 'c\0101'
printf '\101\102\n'
