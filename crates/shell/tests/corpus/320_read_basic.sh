read a b <<EOF
one two three four
EOF
echo "a=$a b=$b"
