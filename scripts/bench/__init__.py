"""The benchmark harness (issue 6): `make bench` runs `python -m scripts.bench.run`.

Pieces: `loadgen` (bounded thread load generator and its statistics), `processes` (the sandbox,
our server and the reference SDK server as loopback subprocesses), `stack` (data dir, tenants
and stores), `reference_server` (the official `mcp` SDK's MCPServer), `run` (the measurements).
"""
