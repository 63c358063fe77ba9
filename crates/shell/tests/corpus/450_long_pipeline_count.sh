seq 1 20000 | cat | cat | wc -l
