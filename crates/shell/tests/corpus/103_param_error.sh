v=ok
echo "${v:?never}"
echo "${unset_var:?custom message}"
echo not reached
