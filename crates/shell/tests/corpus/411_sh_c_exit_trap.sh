sh -c 'trap "echo child-exit" EXIT; echo body'
