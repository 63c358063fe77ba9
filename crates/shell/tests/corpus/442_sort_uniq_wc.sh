printf 'b\na\nb\nc\na\n' | sort | uniq -c | sort -rn | head -n 2
