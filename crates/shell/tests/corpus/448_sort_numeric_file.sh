sort -n nums
