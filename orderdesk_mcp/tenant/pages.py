"""Every view module of the tenant area: importing this registers their routes on area.bp."""

from orderdesk_mcp.tenant import account, activity, apps, keys, sign_in, stores  # noqa: F401
