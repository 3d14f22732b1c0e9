#!/usr/bin/env bash
# The official MCP TypeScript SDK, pinned, into .tools/ts-sdk (with Node 22 in .tools/node22)
# for the end-to-end OAuth test tests/test_oauth_ts_sdk.py. Reruns are no-ops.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TS_SDK_VERSION=1.32.2
# shellcheck source=scripts/node-tools.sh
. scripts/node-tools.sh

install_node
install_pinned "$TOOLS/ts-sdk" @modelcontextprotocol/sdk "$TS_SDK_VERSION"
