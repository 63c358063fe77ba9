seq 1 100 | tr 0-9 a-j | sort | tail -n 3
