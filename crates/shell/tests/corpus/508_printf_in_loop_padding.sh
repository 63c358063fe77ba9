for w in a bb ccc; do printf '%-4s|%3d\n' "$w" ${#w}; done
