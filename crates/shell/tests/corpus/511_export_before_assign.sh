export LATER
echo "${LATER-unset}"
sh -c 'echo "child ${LATER-unset}"'
LATER=now
sh -c 'echo "child $LATER"'
unset LATER
export -p | grep LATER
LATER=again
sh -c 'echo "child $LATER"'
