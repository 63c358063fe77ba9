printf 'z\ny\nx\n' | sort | cat -n
