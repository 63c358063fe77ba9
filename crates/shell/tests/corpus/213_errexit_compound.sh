# set -e: a failure exempt inside a compound command (an AND-OR list's non-final
# command) does not end the script when the compound command passes its status on;
# a subshell's status is checked. update-ca-certificates ends its bundle step with
# `[ -x /sbin/restorecon ] && /sbin/restorecon ...` inside an `if`.
set -e
if true; then echo in-if; false && echo x; fi
echo after-if
{ false && echo y; }
echo after-group
for i in 1; do false && echo z; done
echo after-for
case a in a) false && echo w;; esac
echo after-case
while true; do false && echo v; break; done
echo after-while
( false && echo q )
echo not-reached
