f() { echo "n=$# 1=$1 2=$2 all=$*"; }
f a b c
f
echo "outer $#"
