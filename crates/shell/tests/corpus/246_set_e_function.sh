set -e
f() { false; echo f-unreachable; }
if f; then echo "f ok in cond"; fi
f
echo unreachable
