"""What 2026-07-28 changes in the methods: the result envelope, caching hints, removed methods.

Every result carries `resultType: "complete"` (this server never answers `input_required`:
see docs/CONFORMANCE.md on the dry-run flow) and the server's identity in `_meta`; the
cacheable ones carry `ttlMs` and `cacheScope`. Transport-free, used by the dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orderdesk_mcp.mcp.envelope import SERVER_INFO_KEY
from orderdesk_mcp.mcp.protocol import compact_json, with_fields


@dataclass(frozen=True)
class CacheHint:
    ttl_ms: int
    # "public": the same for every caller, shared caches may keep it; "private": only for
    # the credentials that asked (anything that depends on the key or the tenant).
    scope: Literal["public", "private"]


# The catalogue (tools, prompts, resource templates, capabilities) is fixed when the process
# starts and changes only with an upgrade; we never announce changes (listChanged: false, no
# subscriptions/listen), so the TTL is what bounds how long a client keeps an old catalogue:
# an hour. tools/list and resources/templates/list depend on the key's rights and toolsets
# (and X-MCP-Toolsets), so they are private; prompts/list and server/discover are the same
# for everyone. resources/list names the tenant's stores, which the tenant can change at any
# time: a minute, private. resources/read sets its own TTL per resource (resources.py).
CATALOGUE_TTL_MS = 3_600_000
STORE_LIST_TTL_MS = 60_000
CACHE_HINTS: dict[str, CacheHint] = {
    "server/discover": CacheHint(CATALOGUE_TTL_MS, "public"),
    "tools/list": CacheHint(CATALOGUE_TTL_MS, "private"),
    "prompts/list": CacheHint(CATALOGUE_TTL_MS, "public"),
    "resources/templates/list": CacheHint(CATALOGUE_TTL_MS, "private"),
    "resources/list": CacheHint(STORE_LIST_TTL_MS, "private"),
}
# Tenant data: never shareable across credentials, whatever its TTL.
RESOURCE_READ_SCOPE: Literal["private"] = "private"

# Methods 2026-07-28 removed, with what to do instead. They stay on handshake sessions.
REMOVED_METHODS: dict[str, str] = {
    "initialize": (
        "2026-07-28 has no initialize handshake: send each request with params._meta "
        "(protocol version and client capabilities), or send initialize without "
        "MCP-Protocol-Version: 2026-07-28 to open a 2025-11-25 session"
    ),
    "ping": "2026-07-28 removed ping; any request (server/discover is cheap) shows liveness",
    "logging/setLevel": (
        "2026-07-28 removed logging/setLevel; put the level in params._meta "
        "'io.modelcontextprotocol/logLevel' of each request"
    ),
    "resources/subscribe": (
        "2026-07-28 replaced resources/subscribe with subscriptions/listen, which this server "
        "does not offer (it never pushes updates); read the resource again instead"
    ),
    "resources/unsubscribe": (
        "2026-07-28 replaced resources/unsubscribe with subscriptions/listen, which this "
        "server does not offer"
    ),
}


def cache_fields(hint: CacheHint) -> dict[str, Any]:
    return {"ttlMs": hint.ttl_ms, "cacheScope": hint.scope}


def complete(
    result: dict[str, Any], server_info: dict[str, Any], cache: CacheHint | None = None
) -> dict[str, Any]:
    """`result` as a 2026-07-28 result: resultType, cache hints when given, serverInfo."""
    fields: dict[str, Any] = cache_fields(cache) if cache is not None else {}
    fields["resultType"] = "complete"
    meta = result.get("_meta")
    if isinstance(meta, dict):
        # A result that has _meta of its own keeps it; serverInfo joins it.
        merged = {key: value for key, value in result.items() if key != "_meta"}
        return {**merged, **fields, "_meta": {**meta, SERVER_INFO_KEY: server_info}}
    fields["_meta"] = {SERVER_INFO_KEY: server_info}
    if cache is None:
        # The common case (tool results): the same fields every time, so their JSON is made once.
        return with_fields(result, fields, _plain_fields_json(server_info))
    return with_fields(result, fields)


_plain_fields: tuple[dict[str, Any], str] | None = None


def _plain_fields_json(server_info: dict[str, Any]) -> str:
    """compact_json of {"resultType": "complete", "_meta": {serverInfo}}, kept while the
    server's (never changed) serverInfo object is the same one."""
    global _plain_fields
    if _plain_fields is None or _plain_fields[0] is not server_info:
        fields = {"resultType": "complete", "_meta": {SERVER_INFO_KEY: server_info}}
        _plain_fields = (server_info, compact_json(fields))
    return _plain_fields[1]
