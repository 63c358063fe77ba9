unset u; e=
echo "${u:=set1} $u"
echo "${e:=set2} $e"
echo "${e=nochange} $e"
