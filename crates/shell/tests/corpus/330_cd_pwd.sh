cd dir
pwd
cd sub
pwd
cd ..
pwd
cd
pwd
