echo visible
echo to-err >&2
echo 1>&2 also-err
