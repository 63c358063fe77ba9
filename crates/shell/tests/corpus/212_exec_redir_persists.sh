# `exec` changes the shell's descriptors for good, also from a sourced file, a function
# or eval; a command's own redirections are undone after it, and only those.
echo 'exec 3>&1' > lib.sh
. ./lib.sh
echo sourced >&3
f() { exec 4>&1; }
f
echo function >&4
eval 'exec 5>&1'
echo eval >&5
{ exec 6>&1; } > /dev/null
echo group-redirected >&6
g() { exec 7>&1; }
g 7>/dev/null
echo restored 2>/dev/null >&7 || echo "fd 7 was restored to closed"
exec 3>&-
echo closed 2>/dev/null >&3 || echo "fd 3 closed"
