#!/usr/bin/env bash
# Verifies the Dockerfile's runtime stage on a machine without registry access: the final stage
# is built FROM scratch with the llmux binary built here and the shared libraries it links
# (instead of distroless plus the build stage), then run with podman: /health answers, the
# HEALTHCHECK passes, the process runs as uid 65532, and a config mounted at /etc/llmux is the
# one it serves.
#
#   cargo build --release -p llmux && deploy/verify-image.sh target/release/llmux
#
# Extra `podman run` flags come from PODMAN_RUN_FLAGS (in a container without cgroup v2 and
# with a locked rlimit: "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024").
set -euo pipefail

binary=${1:-target/release/llmux}
port=${PORT_UNDER_TEST:-18082}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
name=llmux-verify-$$
trap 'podman rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

# The binary and every shared library it loads, at their own paths.
mkdir -p "$work/rootfs/tmp"
install -D -m 0755 "$binary" "$work/llmux"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
    install -D "$lib" "$work/rootfs$lib"
done

# The Dockerfile's last stage, with its two registry-dependent lines swapped for local ones.
awk '/^FROM gcr.io\/distroless/ {found=1} found' "$root/Dockerfile" \
    | sed -e 's|^FROM gcr.io/distroless/cc-debian12:nonroot|FROM scratch\nCOPY rootfs/ /|' \
          -e 's|^COPY --from=build /out/llmux /usr/local/bin/llmux|COPY llmux /usr/local/bin/llmux|' \
    > "$work/Containerfile"
grep -q '^FROM scratch' "$work/Containerfile"

podman build --format docker -t llmux:verify "$work"

mkdir -p "$work/etc"
cat > "$work/etc/llmux.yaml" <<YAML
credentials:
  - { platform: openai, value: sk-verify-0123456789, base_url: "http://127.0.0.1:9/v1" }
models:
  - { vendor: openai, model: gpt-4o-mini, name: verified-model }
YAML
podman run -d --name "$name" ${PODMAN_RUN_FLAGS:-} -p "127.0.0.1:$port:8082" \
    -v "$work/etc/llmux.yaml:/etc/llmux/llmux.yaml:ro" llmux:verify

for _ in $(seq 1 50); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
test "$(curl -fsS "http://127.0.0.1:$port/health")" = "OK"
echo "health: OK"
curl -fsS "http://127.0.0.1:$port/v1/models" | grep -q verified-model
echo "config from /etc/llmux: served"
# The image's own HEALTHCHECK, run inside the container.
podman healthcheck run "$name"
echo "healthcheck: healthy"
test "$(podman inspect -f '{{.Config.User}}' "$name")" = "65532:65532"
echo "user: 65532:65532"
echo "image verified"
