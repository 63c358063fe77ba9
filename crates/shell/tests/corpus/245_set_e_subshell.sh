set -e
(false; echo in-sub-unreachable)
echo unreachable
