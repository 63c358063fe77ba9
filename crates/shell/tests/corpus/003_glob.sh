for f in *.txt; do echo "$f"; done
echo nomatch*
