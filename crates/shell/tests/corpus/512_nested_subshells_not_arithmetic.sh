# shell: bash
( ( echo x ) )
((echo y) )
( (echo a); (echo b) )
x=1; ( (x=2; echo "inner $x") ); echo "outer $x"
f() ( (echo fn) ); f
(( 2 + 3 )); echo "arith $?"
(( (2) * (3) == 6 )) && echo six
y=$( ( (echo deep) ) ); echo "$y"
cat <<EOT
( ( not a command ) )
EOT
