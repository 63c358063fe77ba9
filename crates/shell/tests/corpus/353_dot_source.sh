echo 'sourced_var=from-file; echo "in sourced $1"' > lib.sh
. ./lib.sh
echo $sourced_var
