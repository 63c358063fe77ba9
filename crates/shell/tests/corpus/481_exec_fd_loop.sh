exec 5> five.txt
for i in a b; do echo $i >&5; done
exec 5>&-
cat five.txt
