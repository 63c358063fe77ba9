echo *.nope
for f in *.nope; do echo "[$f]"; done
ls *.nope 2>/dev/null || echo "ls failed"
