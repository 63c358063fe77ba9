set -e
if true; then false; fi
echo unreachable
