unset u; e=; v=val
echo "[${u:+alt}] [${e:+alt}] [${v:+alt}]"
echo "[${u+alt}] [${e+alt}] [${v+alt}]"
