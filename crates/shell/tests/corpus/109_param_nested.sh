a=inner
echo ${u:-${a:-x}} "${u:-"quoted $a"}"
