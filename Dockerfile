# syntax=docker/dockerfile:1
#
# cams-operator container image: built from a clean checkout with `docker build .` (no step needed
# before it). The builder compiles the release binary; the runtime is distroless `cc` (glibc, CA
# certificates, no shell, no package manager) running as the non-root user 65532. TLS is rustls
# with ring: there is no OpenSSL in the image. tests/packaging.rs checks this file against
# Cargo.toml (binary name, paths) and the Helm chart (entrypoint, user).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build
COPY . .
# The registry cache survives between builds on the same machine (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin cams-operator \
    && ./target/release/cams-operator --version

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="cams-operator" \
      org.opencontainers.image.description="Keeps Alibaba Cloud CAMS WhatsApp groups in line with ChatGroup resources" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /build/target/release/cams-operator /usr/local/bin/cams-operator
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/cams-operator", "run"]
