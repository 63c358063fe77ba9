set -eux
mkdir -p /tmp/build
cd /tmp/build
echo 'int main(){}' > main.c
ls
cd - >/dev/null
