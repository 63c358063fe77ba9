cat < a.txt
read first < b.txt; echo "$first"
