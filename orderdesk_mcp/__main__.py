"""`python -m orderdesk_mcp` runs the same command line as `orderdesk-mcp`."""

from orderdesk_mcp.cli import main

if __name__ == "__main__":
    main()
