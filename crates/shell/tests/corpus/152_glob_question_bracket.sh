echo ?.txt [ab].txt [!a].txt
