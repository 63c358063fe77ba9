set -- -xy -zarg rest
while getopts xyz: o; do echo "$o ${OPTARG-}"; done
echo $OPTIND
