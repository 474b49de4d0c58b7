# syntax=docker/dockerfile:1
# llmux container image: built in a full Rust image, run from a minimal one as a non-root user.
#
#   docker build -t llmux .
#   docker run -p 8082:8082 -v ./llmux.yaml:/etc/llmux/llmux.yaml:ro llmux
#
# The config is read from /etc/llmux (llmux.yaml|.yml|.json|.toml, or the original router's
# configs/credentials.json + configs/models.json). Without one, llmux starts in demo mode.

ARG RUST_VERSION=1.94

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The bundled SQLite, jemalloc and aws-lc are C code: a C compiler, make and cmake are needed
# once. Build-stage tools only, never shipped: their versions follow the base image, not pins.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake perl \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p llmux \
    && install -D -m 0755 target/release/llmux /out/llmux

# glibc, libgcc and CA certificates, nothing else: no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/llmux /usr/local/bin/llmux
WORKDIR /etc/llmux
# The request log and key databases (sqlite://) belong on a volume, not in the config dir.
VOLUME ["/var/lib/llmux"]
ENV PORT=8082 LOG_FORMAT=json
EXPOSE 8082
# distroless's `nonroot` user, numerically (Kubernetes' runAsNonRoot needs a number).
USER 65532:65532
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/llmux", "health", "--addr", "127.0.0.1:8082"]
ENTRYPOINT ["/usr/local/bin/llmux"]
CMD ["serve"]
