x="pre `echo mid` post"
echo "$x"
echo "`echo "quoted inside"`"
