head -n 1 a.txt
tail -n 1 a.txt
