IFS='
'
for l in $(cat a.txt); do echo "[$l]"; done
