wc -l < a.txt
wc -w < b.txt
