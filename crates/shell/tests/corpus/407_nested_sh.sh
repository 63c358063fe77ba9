sh -c "sh -c 'echo deep'"
