set -e
files=""
for f in *.txt; do
  n=$(wc -l < "$f")
  files="$files $f:$n"
done
echo "summary:$files"
case "$files" in *a.txt*) echo "has a";; esac
