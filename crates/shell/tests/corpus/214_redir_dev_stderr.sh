echo msg > /dev/stderr
echo out > /dev/stdout
