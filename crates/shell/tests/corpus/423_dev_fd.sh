echo to-fd1 > /dev/fd/1
{ echo to-fd2 > /dev/fd/2; } 2>&1
