(echo "${nope?}")
echo "status $?"
e=
(echo "${e:?}")
echo "status $?"
