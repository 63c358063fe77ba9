p='*'
case abc in "$p") echo literal;; $p) echo glob;; esac
case '*' in "$p") echo literal;; esac
