{ false; }; echo $?
{ true; false; true; }; echo $?
