false | true; echo $?
true | false; echo $?
! true | false; echo $?
! false; echo $?
