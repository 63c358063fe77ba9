(exit 3); echo $?
(echo a; exit 0; echo b)
echo c
