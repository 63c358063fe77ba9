p=/usr/local/lib/libfoo.so.1
echo ${p#*/}
echo ${p##*/}
echo ${p%.*}
echo ${p%%.*}
echo ${p#nomatch}
