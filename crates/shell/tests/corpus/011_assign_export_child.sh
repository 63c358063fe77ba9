export A=exported
B=local
sh -c 'echo "A=$A B=${B-unset}"'
