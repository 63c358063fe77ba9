touch t1.tmp t2.tmp
rm *.tmp
echo *.tmp
