count() { [ $1 -gt 0 ] || return 0; echo $1; count $(($1 - 1)); }
count 3
