f() { local v; v=set; echo "in $v"; }
f
echo "out ${v-unset}"
