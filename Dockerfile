# syntax=docker/dockerfile:1
# The metalhost image: one binary for the controller (`metalhost run --kube`) and the webhook
# (`metalhost webhook`), on distroless/cc (glibc and libgcc only; no shell), as user 65532.
#
#   docker build -t quay.io/metalhost/metalhost:0.1.0 .
#   docker push quay.io/metalhost/metalhost:0.1.0
#
# The tag is the workspace version (Cargo.toml); config/ runs quay.io/metalhost/metalhost:0.1.0.
# For another registry: `cd config/default && kustomize edit set image
# quay.io/metalhost/metalhost=REGISTRY/NAME:TAG`.

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p metalhost --bin metalhost \
    && cp target/release/metalhost /metalhost \
    && /metalhost --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /metalhost /usr/local/bin/metalhost
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/metalhost"]
CMD ["--help"]
