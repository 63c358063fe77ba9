for w in a "b c" d; do echo "<$w>"; done
for w; do echo never; done
set -- p q
for w; do echo $w; done
