printf '%s\n' x y z > p.txt
while read v; do printf '%s-' "$v"; done < p.txt; echo
