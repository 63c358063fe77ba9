x=1
x=2 sh -c 'echo inner $x'
echo outer $x
y=a z=b; echo $y$z
