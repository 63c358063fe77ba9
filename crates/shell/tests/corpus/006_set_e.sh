set -e
if false; then echo no; fi
false && echo no
echo reached
false
echo not reached
