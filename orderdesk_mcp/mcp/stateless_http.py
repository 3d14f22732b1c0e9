"""One stateless (2026-07-28) POST to /mcp: its envelope checked, then the dispatcher.

The blueprint has already checked Host and Origin, authenticated the caller and charged the
key's rate limit; it calls `answer_stateless` with the decoded body and the routing headers
and turns the answer into a response. No session is read or minted. The HTTP status of an
error follows the revision and the official Python SDK's table (`ERROR_CODE_HTTP_STATUS`):
400 for a malformed request, bad params, a header mismatch or an unsupported version, 404 for
an unknown or removed method; other errors (-32603, our -32000) keep 200.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.mcp.dispatcher import CallScope, Dispatcher
from orderdesk_mcp.mcp.envelope import read_envelope, unsupported_version
from orderdesk_mcp.mcp.protocol import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    SUPPORTED_PROTOCOL_VERSIONS,
    UNSUPPORTED_PROTOCOL_VERSION,
    ClientResponse,
    JsonRpcError,
    Notification,
    error_message,
    parse_message,
    request_id_of,
)
from orderdesk_mcp.mcp.request_headers import VERSION_HEADER

MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
ERROR_STATUS: Mapping[int, int] = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}


@dataclass(frozen=True)
class StatelessAnswer:
    status: int
    # None: an accepted notification (202, empty body).
    body: dict[str, Any] | None


def _error(request_id: Any, error: JsonRpcError) -> StatelessAnswer:
    return StatelessAnswer(ERROR_STATUS.get(error.code, 200), error_message(request_id, error))


def answer_stateless(
    dispatcher: Dispatcher,
    scope: CallScope,
    raw: Any,
    headers: Mapping[str, Sequence[str]],
) -> StatelessAnswer:
    """The status and body for one stateless POST body (`headers`: lower-case name -> values)."""
    if isinstance(raw, list):
        return _error(
            None,
            JsonRpcError(
                INVALID_REQUEST,
                "JSON-RPC batches are not part of protocol 2026-07-28; send one request per POST",
            ),
        )
    try:
        message = parse_message(raw)
    except JsonRpcError as error:
        return _error(request_id_of(raw), error)
    if isinstance(message, ClientResponse):
        return _error(
            message.id,
            JsonRpcError(
                INVALID_REQUEST,
                "a 2026-07-28 client sends no JSON-RPC responses (this server sends no requests)",
            ),
        )
    if isinstance(message, Notification):
        return _notification(dispatcher, message, headers)
    try:
        envelope = read_envelope(message.method, message.params, headers)
    except JsonRpcError as error:
        return _error(message.id, error)
    reply = dispatcher.handle_request(message, scope, envelope)
    error_body = reply.get("error")
    status = ERROR_STATUS.get(error_body["code"], 200) if isinstance(error_body, dict) else 200
    return StatelessAnswer(status, reply)


def _notification(
    dispatcher: Dispatcher, message: Notification, headers: Mapping[str, Sequence[str]]
) -> StatelessAnswer:
    """Accepted and dropped (202), as the SDK does: 2026-07-28 defines no client notifications
    over HTTP (closing the response stream cancels), but clients in the field still send
    them. The handshake's own notification and a version we do not speak are refused."""
    versions = headers.get(VERSION_HEADER.lower(), ())
    if versions and versions[0] not in SUPPORTED_PROTOCOL_VERSIONS:
        return _error(None, unsupported_version(versions[0]))
    if message.method == "notifications/initialized":
        return _error(
            None,
            JsonRpcError(
                METHOD_NOT_FOUND,
                "notifications/initialized belongs to the initialize handshake, which 2026-07-28 "
                "removed; stateless requests need no handshake",
            ),
        )
    dispatcher.handle_notification(message)
    return StatelessAnswer(202, None)
