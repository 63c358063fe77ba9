n=$(cat a.txt | wc -l)
echo "lines: $n"
