echo */*/*.md
echo dir/*/
