{ echo out; echo err >&2; } > both.txt 2>&1
sort both.txt
