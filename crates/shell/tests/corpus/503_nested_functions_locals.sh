outer() { local v=outer; inner; echo "outer sees $v"; }
inner() { local v=inner; echo "inner sees $v"; }
v=global
outer
echo "global $v"
