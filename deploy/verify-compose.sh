#!/usr/bin/env bash
# Verifies what deploy/compose.yaml promises without a container engine: two llmux processes
# run deploy/llmux.compose.yaml (its `postgres`/`redis` hosts pointed at local services, its
# OpenAI credential at `llmux mock-upstream`); a virtual key created through replica 1 answers
# on replica 2, and once revoked through replica 2 it is refused by replica 1.
#
#   eval "$(scripts/services)"; cargo build -p llmux; deploy/verify-compose.sh target/debug/llmux
set -euo pipefail

binary=$(realpath "${1:-target/debug/llmux}")
root=$(cd "$(dirname "$0")/.." && pwd)
: "${LLMUX_TEST_PG_URL:?run eval \"\$(scripts/services)\" first}"
: "${LLMUX_TEST_REDIS_URL:?run eval \"\$(scripts/services)\" first}"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {
    for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "no answer from $1" >&2; return 1
}

mock_port=$(free_port)
"$binary" mock-upstream --listen "127.0.0.1:$mock_port" >"$work/mock.log" 2>&1 &
pids+=($!)

python3 - "$root/deploy/llmux.compose.yaml" "$work/llmux.yaml" "$mock_port" <<'PY'
import re, sys, os
text = open(sys.argv[1]).read()
text = re.sub(r"postgres://[^\s]+", os.environ["LLMUX_TEST_PG_URL"], text)
text = text.replace("redis://redis:6379", os.environ["LLMUX_TEST_REDIS_URL"])
text = text.replace("  - platform: openai\n",
                    f"  - platform: openai\n    base_url: http://127.0.0.1:{sys.argv[3]}/v1\n", 1)
open(sys.argv[2], "w").write(text)
PY

export LLMUX_MASTER_KEY="verify-master-$$-0123456789"
ports=()
for replica in 1 2; do
    port=$(free_port)
    ports+=("$port")
    PORT=$port "$binary" serve --config "$work/llmux.yaml" >"$work/replica-$replica.log" 2>&1 &
    pids+=($!)
done
wait_for "http://127.0.0.1:${ports[0]}/health"
wait_for "http://127.0.0.1:${ports[1]}/health"
echo "two replicas up on ${ports[*]}"

created=$(curl -fsS "http://127.0.0.1:${ports[0]}/admin/keys" \
    -H "authorization: Bearer $LLMUX_MASTER_KEY" -H 'content-type: application/json' \
    -d '{"name":"compose-verify"}')
key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")

chat() {
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v1/chat/completions" \
        -H "authorization: Bearer $key" -H 'content-type: application/json' \
        -d '{"model":"fast","messages":[{"role":"user","content":"hi"}]}'
}
test "$(chat "${ports[1]}")" = 200
echo "key created on replica 1 answers on replica 2"

curl -fsS -X DELETE "http://127.0.0.1:${ports[1]}/admin/keys/$id" \
    -H "authorization: Bearer $LLMUX_MASTER_KEY" >/dev/null
for _ in $(seq 1 50); do
    status=$(chat "${ports[0]}")
    [ "$status" = 401 ] && break
    sleep 0.1
done
test "$status" = 401
echo "key revoked on replica 2 is refused by replica 1"
echo "compose topology verified"
