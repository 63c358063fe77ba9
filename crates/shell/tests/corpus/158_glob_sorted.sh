touch zz.txt AA.txt mm.txt
echo *.txt
