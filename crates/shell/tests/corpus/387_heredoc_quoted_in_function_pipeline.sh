emit() {
	cat <<'END'
$not_expanded `neither`
END
}
emit | tr a-z A-Z
