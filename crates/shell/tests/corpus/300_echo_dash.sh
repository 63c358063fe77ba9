echo -n no-newline; echo
echo 'a\tb' 'c\nd'
echo 'stop\c' never
echo '\0101\0102'
echo -e x
echo -- x
