gen() {
  cat <<-EOF
	c
	a
	b
	EOF
}
gen | sort
