# shell: bash
bash -c 'echo "from bash ${1}"' sh first
