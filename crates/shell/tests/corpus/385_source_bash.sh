# shell: bash
echo 'echo "sourced with $# args: $*"' > lib2.sh
source ./lib2.sh p q
echo after
