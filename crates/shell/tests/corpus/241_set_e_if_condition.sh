set -e
if false; then echo no; else echo else-branch; fi
while false; do :; done
until true; do :; done
echo survived
