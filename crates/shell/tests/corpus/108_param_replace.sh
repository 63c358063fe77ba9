# shell: bash
x=aaa-bbb-aaa
echo ${x/aaa/X}
echo ${x//aaa/X}
echo ${x/#aaa/S}
echo ${x/%aaa/E}
echo ${x//-/}
echo "${x/b*b/M}"
