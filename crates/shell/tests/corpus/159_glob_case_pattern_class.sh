echo [[:lower:]].txt
