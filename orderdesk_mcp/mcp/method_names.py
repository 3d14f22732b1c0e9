"""The JSON-RPC method names the MCP specification defines, revisions 2025-03-26 to 2026-07-28.

Metrics label a message by its method only when the name is in this list: the list is fixed
by the protocol, so a client sending made-up names cannot take label slots first (they all
count as `other`). Both directions are listed (a client may send a server-bound name to us by
mistake, and that is worth seeing in the metrics as itself).
"""

from __future__ import annotations

MCP_METHODS: frozenset[str] = frozenset(
    {
        # lifecycle and utilities
        "initialize",
        "ping",
        "server/discover",  # 2026-07-28 (stateless revision)
        "logging/setLevel",
        "completion/complete",
        # server features
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        # client features, sent by a server
        "sampling/createMessage",
        "roots/list",
        "elicitation/create",  # 2025-06-18
        # tasks, 2025-11-25 (an extension from 2026-07-28)
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        # notifications
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/message",
        "notifications/resources/updated",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/roots/list_changed",
        "notifications/elicitation/complete",  # 2025-11-25
        "notifications/tasks/status",  # 2025-11-25
    }
)
