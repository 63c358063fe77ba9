cat <<-EOF
	indented with tab
		double
EOF
