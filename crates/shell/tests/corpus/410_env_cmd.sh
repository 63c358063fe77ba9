env V=1 sh -c 'echo "V=$V"'
