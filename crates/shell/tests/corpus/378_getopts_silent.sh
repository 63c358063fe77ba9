set -- -q -b
while getopts :ab: o; do echo "o=$o arg=$OPTARG"; done
