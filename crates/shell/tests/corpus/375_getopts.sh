set -- -a -b val -c file1 file2
while getopts ab:c opt; do
  case $opt in
    a) echo "flag a";;
    b) echo "b=$OPTARG";;
    c) echo "flag c";;
  esac
done
shift $((OPTIND-1))
echo "rest: $*"
