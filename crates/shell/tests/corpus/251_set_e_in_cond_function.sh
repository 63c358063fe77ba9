set -e
f() { false; echo "after false in f"; }
f && echo "f returned 0"
echo end
