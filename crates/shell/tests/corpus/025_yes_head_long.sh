yes abc | head -n 3
yes | head -c 5; echo
echo done
