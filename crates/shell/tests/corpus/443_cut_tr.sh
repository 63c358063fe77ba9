echo "a:b:c" | cut -d: -f2
echo "Hello" | tr '[:lower:]' '[:upper:]'
