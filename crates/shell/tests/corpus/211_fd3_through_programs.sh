# A program's children get the descriptors the shell opened above stdio, as natively:
# debconf's confmodule opens fd 3 once, and the scripts that tools run write to it.
exec 3>&1 1>/dev/null
printf 'a\nb\n' | xargs sh -c 'echo "xargs: $*" >&3' sh
env sh -c 'echo env >&3'
find . -maxdepth 0 -exec sh -c 'echo find >&3' \;
exec 5>&3
env sh -c 'echo five >&5; env sh -c "echo nested >&5"'
