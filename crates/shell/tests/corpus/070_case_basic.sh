for x in apple banana cherry 42 ""; do
  case $x in
    a*) echo "a-word $x";;
    *an*) echo "has an";;
    [0-9]*) echo number;;
    "") echo empty;;
    *) echo other;;
  esac
done
