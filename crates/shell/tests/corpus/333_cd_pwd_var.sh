cd dir/sub
echo "$PWD"
cd ../..
echo "$PWD"
