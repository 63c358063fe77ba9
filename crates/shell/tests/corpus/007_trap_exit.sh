trap 'echo bye $?' EXIT
echo hi
exit 3
