cat a.txt b.txt | wc -l
