if out=$(false); then echo yes; else echo "no $?"; fi
