cat() { echo fake cat; }
cat a.txt
command cat b.txt
