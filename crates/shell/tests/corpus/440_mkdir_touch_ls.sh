mkdir -p new/deep
touch new/deep/f1 new/f2
ls new
ls -R new | head -n 20
