upper() { tr a-z A-Z; }
echo hello | upper
