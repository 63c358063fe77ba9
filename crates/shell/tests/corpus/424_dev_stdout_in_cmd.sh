echo hi | tee /dev/stdout > /dev/null
