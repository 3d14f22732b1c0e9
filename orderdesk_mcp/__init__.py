"""orderdesk-mcp: an MCP server for Order Desk stores."""

__version__ = "0.1.0"
