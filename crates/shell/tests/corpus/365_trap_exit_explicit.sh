trap 'echo trap-ran; exit 7' EXIT
exit 2
