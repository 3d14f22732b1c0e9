"""The 2026-07-28 per-request envelope: protocol version and client facts in `params._meta`.

A stateless request names its protocol version and the client's capabilities (and, as it
should, the client's identity) in `params._meta`; there is no handshake to remember them.
`read_envelope` checks them in the order the official Python SDK does (its
`classify_inbound_request`): the required keys (-32602), then, over HTTP, the mirrored
headers (-32020, see request_headers.py), then the version itself (-32022). Transport-free:
HTTP passes its headers, stdio passes none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.mcp.echo import echo
from orderdesk_mcp.mcp.protocol import (
    INVALID_PARAMS,
    MODERN_PROTOCOL_VERSIONS,
    SUPPORTED_PROTOCOL_VERSIONS,
    UNSUPPORTED_PROTOCOL_VERSION,
    JsonRpcError,
)
from orderdesk_mcp.mcp.request_headers import check_request_headers

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
REQUIRED_KEYS = (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY)

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


@dataclass(frozen=True)
class Envelope:
    """What one stateless request says about itself."""

    protocol_version: str
    client_capabilities: dict[str, Any]
    client_info: dict[str, Any] | None = None
    # The deprecated logging feature, opted into per request; replies are plain JSON (no
    # stream), so no notifications/message is ever sent, but a bad level is still refused.
    log_level: str | None = None


def has_modern_envelope(params: Mapping[str, Any] | None) -> bool:
    """Whether `params._meta` names a protocol version: only 2026-07-28 clients put it there.

    The key alone decides (as in the SDK), so a half-built envelope is still read as one
    and told which key it lacks; a bare `_meta` is not evidence (legacy requests carry
    `progressToken` in it).
    """
    meta = params.get("_meta") if params else None
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_KEY in meta


def unsupported_version(requested: str) -> JsonRpcError:
    """-32022 naming what we speak; clients retry with a version from `data.supported`."""
    return JsonRpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"unsupported protocol version {echo(requested)}; this server speaks "
        + ", ".join(SUPPORTED_PROTOCOL_VERSIONS)
        + " (2026-07-28 with params._meta on every request, the others through initialize)",
        {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested},
    )


def read_envelope(
    method: str,
    params: Mapping[str, Any],
    headers: Mapping[str, Sequence[str]] | None = None,
) -> Envelope:
    """The envelope of a stateless request, or the JSON-RPC error that refuses it.

    `headers` maps lower-case header names to every value received (HTTP); None skips the
    header checks (stdio).
    """
    meta = params.get("_meta")
    if not isinstance(meta, Mapping):
        raise JsonRpcError(
            INVALID_PARAMS,
            "params._meta must be an object carrying "
            f"{PROTOCOL_VERSION_KEY!r} (e.g. '2026-07-28') and {CLIENT_CAPABILITIES_KEY!r} "
            "on every 2026-07-28 request; older clients start with initialize instead",
        )
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise JsonRpcError(
            INVALID_PARAMS,
            "params._meta lacks " + " and ".join(repr(key) for key in missing) + "; every "
            "2026-07-28 request carries both (capabilities may be {})",
        )
    version = meta[PROTOCOL_VERSION_KEY]
    if headers is not None:
        check_request_headers(headers, method=method, params=params, body_version=version)
    if not isinstance(version, str):
        raise JsonRpcError(
            INVALID_PARAMS, f"params._meta {PROTOCOL_VERSION_KEY!r} must be a string"
        )
    if version not in MODERN_PROTOCOL_VERSIONS:
        raise unsupported_version(version)
    return Envelope(
        protocol_version=version,
        client_capabilities=_object(meta, CLIENT_CAPABILITIES_KEY, required=True) or {},
        client_info=_object(meta, CLIENT_INFO_KEY, required=False),
        log_level=_log_level(meta),
    )


def _object(meta: Mapping[str, Any], key: str, *, required: bool) -> dict[str, Any] | None:
    value = meta.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise JsonRpcError(INVALID_PARAMS, f"params._meta {key!r} must be a JSON object")
    return value


def _log_level(meta: Mapping[str, Any]) -> str | None:
    level = meta.get(LOG_LEVEL_KEY)
    if level is None:
        return None
    if level not in LOG_LEVELS:
        raise JsonRpcError(
            INVALID_PARAMS,
            f"params._meta {LOG_LEVEL_KEY!r} must be one of " + ", ".join(LOG_LEVELS),
        )
    return str(level)
