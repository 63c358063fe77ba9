my_func_2() { echo "ok $1"; }
my_func_2 z
