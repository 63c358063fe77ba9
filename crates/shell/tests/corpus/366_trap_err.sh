# shell: bash
trap 'echo "err trapped"' ERR
false
true
false || true
echo end
