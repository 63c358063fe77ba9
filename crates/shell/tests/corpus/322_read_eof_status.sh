printf 'no-newline' | { read v; echo "status $? v=$v"; }
read w < /dev/null; echo "empty status $?"
