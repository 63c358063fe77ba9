x="a b  c"; set -- $x; echo $#; echo "$(echo "in $(echo 'q x')")"
