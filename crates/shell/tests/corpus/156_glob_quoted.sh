echo "*.txt" '*.txt' \*.txt
