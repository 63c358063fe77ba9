false || false; echo $?
true && (exit 4); echo $?
