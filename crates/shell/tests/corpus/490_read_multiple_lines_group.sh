{ read l1; read l2; read l3; echo "$l3 $l2 $l1"; } < a.txt
