cd dir
cd /
cd - > /dev/null
pwd
echo "$OLDPWD"
