> pre.txt echo prefix-redirect
cat pre.txt
