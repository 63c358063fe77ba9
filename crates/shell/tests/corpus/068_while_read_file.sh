while read line; do echo "got $line"; done < a.txt
