f() { echo in-f; } > f.out
f
cat f.out
