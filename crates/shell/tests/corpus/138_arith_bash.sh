# shell: bash
echo $((2**10)) $((3**2))
x=5; ((x > 3)) && echo big
for ((i=0; i<3; i++)); do echo $i; done
