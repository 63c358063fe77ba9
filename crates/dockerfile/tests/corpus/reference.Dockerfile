# Examples from the Dockerfile reference.
FROM busybox AS base
ENV FOO=/bar
WORKDIR ${FOO}
ADD . $FOO
COPY \$FOO /quux
ENV abc=hello
ENV abc=bye def=$abc
ENV ghi=$abc
ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog \
    MY_CAT=fluffy
ENV MY_VAR my-value
LABEL "com.example.vendor"="ACME Incorporated"
LABEL com.example.label-with-value="foo"
LABEL version="1.0"
LABEL description="This text illustrates \
that label-values can span multiple lines."
LABEL multi.label1="value1" multi.label2="value2" other="value3"
EXPOSE 80/udp
EXPOSE 80/tcp 8000-8010
VOLUME ["/data"]
VOLUME /var/log /var/db
USER patrick:staff
ARG user1
ARG buildno=1
ARG CONT_IMG_VER
ENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}
ONBUILD ADD . /app/src
ONBUILD RUN /usr/local/bin/python-build --dir /app/src
STOPSIGNAL 9
HEALTHCHECK NONE
MAINTAINER Someone <someone@example.com>
RUN ["/bin/bash", "-c", "echo hello"]
RUN [ "echo", "$HOME" ]
RUN [ "sh", "-c", "echo $HOME" ]
RUN --network=none pip install --find-links wheels mypkg
RUN --security=insecure cat /proc/self/status
RUN --mount=type=ssh,required git clone git@github.com:me/private.git
RUN --mount=type=tmpfs,target=/scratch,size=1g make
RUN --mount=type=secret,id=aws,env=AWS_SECRET --mount=type=secret,id=token \
    ./deploy.sh
CMD echo "This is a test." | wc -
ENTRYPOINT exec top -b

FROM base AS copies
COPY --link --chmod=755 hom* /mydir/
COPY --parents ./x/**/*.txt /parents/
COPY --exclude=*.md --exclude=*.txt docs /docs/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit
ADD --unpack=false archive.tar.gz /archives/
COPY ["a file.txt", "/dest dir/"]
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
COPY --from=0 /bar /from-index
