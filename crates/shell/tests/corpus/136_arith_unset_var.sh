echo $((nothing + 1))
e=
echo $((e + 2))
