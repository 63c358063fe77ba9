echo closed >&-
echo "status $?"
cat <&- 2>/dev/null
echo done
