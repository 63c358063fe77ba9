read a <<'EOF'
first \
second
EOF
echo "$a"
