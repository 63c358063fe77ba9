cat /dev/null; echo "[$(cat /dev/null)]"
