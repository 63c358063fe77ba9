cd dir
cat x.txt
ls
cd ..
