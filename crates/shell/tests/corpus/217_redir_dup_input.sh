exec 4< a.txt
read one <&4
read two <&4
echo "$one $two"
