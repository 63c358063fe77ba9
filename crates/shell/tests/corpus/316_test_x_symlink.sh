mkdir -p bin
printf '#!/bin/sh\necho hi\n' > bin/tool
chmod +x bin/tool
[ -x bin/tool ] && echo executable
[ -x a.txt ] || echo not-executable
ln -s a.txt link
[ -h link ] && echo symlink
[ -L a.txt ] || echo not-link
