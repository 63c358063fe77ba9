set -e
check() { [ -f "$1" ] || return 1; echo "found $1"; }
check a.txt
check missing.txt || echo "missing handled"
check missing.txt
echo unreachable
