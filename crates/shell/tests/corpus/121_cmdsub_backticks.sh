echo `echo hi`
echo "`echo a b`"
echo `echo \`echo nested\``
