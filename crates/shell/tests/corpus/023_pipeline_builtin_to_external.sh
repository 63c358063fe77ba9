for i in 1 2 3; do echo line$i; done | tr a-z A-Z
