if true; then echo in-if; fi > if.txt
while read l; do echo "<$l>"; done < a.txt > wl.txt
cat if.txt wl.txt
