eval false; echo $?
eval; echo $?
eval 'exit 4'
