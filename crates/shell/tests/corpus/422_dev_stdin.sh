echo via-stdin | cat /dev/stdin
