cmd='echo evaluated $x'
x=42
eval "$cmd"
eval 'y=5; echo $y'
eval "for i in 1 2; do echo \$i; done"
