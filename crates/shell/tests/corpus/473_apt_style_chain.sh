false || true && echo chain-ok
{ echo a; false; } || echo "group failed"
