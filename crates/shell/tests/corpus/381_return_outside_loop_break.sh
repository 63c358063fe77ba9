break
continue
echo fine
