read x <<'EOF'
back\slash \
EOF
echo "$x"
read -r y <<'EOF'
back\slash \
EOF
echo "$y"
