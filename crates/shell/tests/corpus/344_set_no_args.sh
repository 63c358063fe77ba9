unset PATH HOME LC_ALL PWD OLDPWD PS4 IFS OPTIND PPID PS1 PS2
v1=a v2='b c'
set | grep '^v[12]='
