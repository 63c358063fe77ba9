pat='dir/*.txt'
echo $pat
echo "$pat"
