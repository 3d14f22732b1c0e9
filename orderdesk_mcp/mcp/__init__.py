"""The MCP side of orderdesk-mcp: transport, dispatcher, tools, resources and prompts."""
