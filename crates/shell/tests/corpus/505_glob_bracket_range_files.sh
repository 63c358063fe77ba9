touch f1 f2 f3 g1
echo f[1-2] f[!1]* [fg]1
