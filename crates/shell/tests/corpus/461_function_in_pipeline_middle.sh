add_prefix() { while read l; do echo "p:$l"; done; }
printf '1\n2\n' | add_prefix | tail -n 1
