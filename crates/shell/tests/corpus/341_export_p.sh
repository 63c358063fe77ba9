unset PATH HOME LC_ALL PWD OLDPWD
export ZZ=last AA='with space'
export -p
