"""OAuth 2.1 sign-in (on when ORDERDESK_MCP_PUBLIC_URL is set): this server is its own
authorization server for its /mcp resource. See docs/OAUTH.md."""
