# shell: bash
read a b <<< "x y"
echo "$b $a"
cat <<< 'here string'
tr a-z A-Z <<<"$a"
