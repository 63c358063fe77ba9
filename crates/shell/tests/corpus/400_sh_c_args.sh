sh -c 'echo "0=$0 1=$1 #=$#"' name one two
sh -c 'exit 3'; echo $?
