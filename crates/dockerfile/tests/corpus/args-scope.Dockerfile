ARG  CODE_VERSION=latest
ARG  REGISTRY
FROM base:${CODE_VERSION} AS one
CMD  ["/code/run-app"]

FROM extras:${CODE_VERSION} AS two
ARG CODE_VERSION
RUN echo $CODE_VERSION > image_version
ARG SETTINGS
RUN ./run/setup $SETTINGS

FROM ${REGISTRY:-docker.io}/library/alpine AS three
ARG TARGETPLATFORM
RUN echo "building for $TARGETPLATFORM"
