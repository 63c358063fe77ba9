echo *hidden*
echo .h*
