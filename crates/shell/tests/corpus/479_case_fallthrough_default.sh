case "x y" in
  "x y") echo exact;;
  *) echo default;;
esac
case "" in
  *) echo empty-default;;
esac
