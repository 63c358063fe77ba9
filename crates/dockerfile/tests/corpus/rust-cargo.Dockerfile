# syntax=docker/dockerfile:1.7
ARG RUST_VERSION=1.79
ARG APP_NAME=server

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG APP_NAME
WORKDIR /app
RUN --mount=type=ssh \
    --mount=type=bind,source=src,target=src \
    --mount=type=bind,source=Cargo.toml,target=Cargo.toml \
    --mount=type=bind,source=Cargo.lock,target=Cargo.lock \
    --mount=type=cache,target=/app/target/,id=rust-target-${APP_NAME} \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    --mount=type=cache,target=/usr/local/cargo/registry/,sharing=private \
    <<EOF
set -e
cargo build --locked --release
cp ./target/release/$APP_NAME /bin/server
EOF

FROM debian:bookworm-slim AS final
ARG UID=10001
RUN useradd --uid "${UID}" --no-create-home appuser
USER ${UID}
COPY --link --from=build /bin/server /bin/
EXPOSE 8080
ENTRYPOINT ["/bin/server"]
