cd dir
echo *.txt
