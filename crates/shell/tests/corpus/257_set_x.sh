set -x
echo traced "a b"
x=1
y=2 true
set +x
echo quiet
