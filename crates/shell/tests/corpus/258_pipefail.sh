# shell: bash
set -o pipefail
false | true; echo $?
true | true; echo $?
(exit 3) | (exit 0) | true; echo $?
set +o pipefail
false | true; echo $?
