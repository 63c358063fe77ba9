name=target
echo data > "$name.out"
cat target.out
