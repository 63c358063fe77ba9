f() { return 3; echo no; }
f; echo $?
g() { false; }
g; echo $?
h() { (exit 9); return; }
h; echo $?
