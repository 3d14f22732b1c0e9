#!/usr/bin/env bash
# The official MCP TypeScript SDKs, pinned, with Node 22 in .tools/node22: the v1 package
# (@modelcontextprotocol/sdk, 2025-era only) into .tools/ts-sdk for the end-to-end OAuth test
# tests/test_oauth_ts_sdk.py, and the v2 client package (@modelcontextprotocol/client, which
# speaks revision 2026-07-28) into .tools/ts-client for tests/test_mcp_ts_client.py.
# Reruns are no-ops.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TS_SDK_VERSION=1.32.2
TS_CLIENT_VERSION=2.4.0
# shellcheck source=scripts/node-tools.sh
. scripts/node-tools.sh

install_node
install_pinned "$TOOLS/ts-sdk" @modelcontextprotocol/sdk "$TS_SDK_VERSION"
install_pinned "$TOOLS/ts-client" @modelcontextprotocol/client "$TS_CLIENT_VERSION"
