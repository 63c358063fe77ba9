echo piped | sh -c 'read x; echo "got $x"'
