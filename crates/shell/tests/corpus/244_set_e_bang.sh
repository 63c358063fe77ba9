set -e
! true
echo survived-bang
