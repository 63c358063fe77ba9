for x in 1 5 10; do echo $((x <= 5)) $((x >= 5)) $((x != 5)); done
