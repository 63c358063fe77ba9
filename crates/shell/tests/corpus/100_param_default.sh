unset u; e=; v=val
echo "${u:-def} ${e:-def} ${v:-def}"
echo "${u-def} [${e-def}] ${v-def}"
