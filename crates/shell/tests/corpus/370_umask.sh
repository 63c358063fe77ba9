umask
umask 077
umask
umask -S
umask 022
umask -S
