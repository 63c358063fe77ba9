bash -c 'echo -e "a\tb"; echo "no\tescape"; echo -n x; echo -ne "y\n"; echo -E "raw\t"'
sh -c 'echo "dash\tescapes"'
