"""The tool catalogue, one module per toolset; `orderdesk_mcp.mcp.registry` collects them."""
