# syntax=docker/dockerfile:1
FROM debian:bookworm
RUN <<EOF
apt-get update
apt-get install -y --no-install-recommends vim
EOF

RUN <<EOT bash
  set -ex
  echo "hello $HOME"
EOT

RUN <<-'SCRIPT'
	#!/usr/bin/env python3
	print("hello world")
	SCRIPT

RUN cat <<FILE1 >/file1 && cat <<FILE2 >/file2
I am
first
FILE1
I am
second
FILE2

ARG FOO=bar
COPY <<-EOT /app/foo
	hello ${FOO}
EOT

COPY <<robots.txt <<"humans.txt" /usr/share/nginx/html/
User-agent: *
Disallow: /
robots.txt
/* TEAM $NOT_EXPANDED */
humans.txt

RUN python3 <<EOF > /hello
with open("/hello", "w") as f:
    print("Hello", file=f)
EOF
