exec > ex.txt
echo into-file
exec >&2
cat ex.txt >&2
