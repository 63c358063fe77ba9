x=val
cat <<'EOF'
no $x expansion `here`
EOF
cat <<"END"
also $x literal
END
