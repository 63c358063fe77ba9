set -e
false && echo no
false || echo rescued
true && false || echo last-or
echo survived
