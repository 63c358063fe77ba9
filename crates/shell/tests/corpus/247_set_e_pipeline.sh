set -e
false | true
echo survived-pipe
true | false
echo unreachable
