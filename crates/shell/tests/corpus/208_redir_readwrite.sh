echo hello > rw.txt
cat <> rw.txt
