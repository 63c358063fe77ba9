f() { echo $#; shift; echo $#; }
f 1 2 3
