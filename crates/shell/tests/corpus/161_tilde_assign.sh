HOME=/h
p=~/bin
echo $p
