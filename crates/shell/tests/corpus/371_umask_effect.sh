umask 077
: > private.txt
ls -l private.txt | cut -c1-10
umask 022
: > public.txt
ls -l public.txt | cut -c1-10
