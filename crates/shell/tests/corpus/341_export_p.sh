export ZZ=last AA='with space'
export -p | grep -E '^export (AA|ZZ)='
