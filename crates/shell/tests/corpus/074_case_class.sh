for c in a Z 5 _ -; do
  case $c in
    [[:lower:]]) echo lower;;
    [[:upper:]]) echo upper;;
    [[:digit:]]) echo digit;;
    [!a-z]) echo "not a-z $c";;
  esac
done
