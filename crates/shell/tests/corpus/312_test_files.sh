[ -e a.txt ] && echo exists
[ -f a.txt ] && echo file
[ -d dir ] && echo dir
[ -f dir ] || echo not-file
[ -e nope ] || echo missing
[ -s a.txt ] && echo nonzero
: > empty; [ -s empty ] || echo zero-size
[ -r a.txt ] && echo readable
