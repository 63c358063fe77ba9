f() { echo f1; }
(f() { echo f2; }; f)
f
