echo 'single $x' "double \$x" \$x "a\"b" 'it'"'"'s'
echo "tab	in" "back\\slash" "keep\q"
