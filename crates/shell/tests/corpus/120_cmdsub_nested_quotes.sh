echo "$(echo "a $(echo "b 'c' d") e")"
x="$(echo 'it''s')"; echo "$x"
