export V=exported
NV=prefix sh -c 'echo "$V $NV ${UNSET-none}"'
