for i in $(seq 3); do echo "n$i"; done
