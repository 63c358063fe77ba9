echo *.txt
echo dir/*
echo */
