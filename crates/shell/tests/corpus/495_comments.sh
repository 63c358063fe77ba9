echo a # comment
# full line
echo b#notcomment
