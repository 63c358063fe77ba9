# brush-parser 0.4 cannot tokenize an unbalanced `pat)` inside `$( )`; the POSIX
# leading-paren form `(pat)` works in every shell, so RUN scripts can use that.
x=$(case a in (a) echo matched;; esac)
echo $x
