{ echo err >&2; } 2>&1 > order.txt | tr a-z A-Z
echo "file: [$(cat order.txt)]"
