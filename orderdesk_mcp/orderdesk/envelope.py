"""Turn one Order Desk reply (status, content type, body bytes) into its envelope or an error.

A reply is a failure when the HTTP status is not 2xx *or* the JSON body says
``"status": "error"`` (reference §2.2: do both checks). This module is pure: no I/O, so it is
tested directly with arbitrary (hostile) input.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from orderdesk_mcp.orderdesk.errors import (
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskError,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)

MAX_MESSAGE_CHARS = 500
"""Upstream messages are cut to this length: enough to act on, never a whole HTML page."""

REDACTED = "[redacted]"

# Order Desk may answer HTTP 200 with "status": "error" (reference Uncertain 1). These words in
# the message tell what kind of refusal it was; anything else is a refused request.
_AUTH_WORDS = ("api key", "api-key", "store id", "unauthorized", "authenticat", "credential")
_NOT_FOUND_WORDS = ("not found", "does not exist", "no such")


def interpret_reply(
    status: int,
    content_type: str | None,
    body: bytes,
    *,
    method: str,
    endpoint: str,
    secrets: tuple[str, ...] = (),
    retry_after: float = 1.0,
) -> dict[str, Any]:
    """Return the decoded envelope of a successful reply; raise the matching error otherwise.

    ``secrets`` are scrubbed from any message (an API key must never travel in an error).
    ``retry_after`` is put on the RateLimited raised for a 429 (the caller parsed the header).
    """
    where = _Where(status=status, endpoint=endpoint, method=method)
    decoded = _decode_json(body)
    if status == 429 and not isinstance(decoded, dict):
        raise RateLimited("Order Desk's rate limit was hit", retry_after=retry_after, **where)
    if not isinstance(decoded, dict):
        raise _non_json_error(status, content_type, decoded is not _NOT_JSON, where)
    message = _message_of(decoded, secrets)
    if not 200 <= status < 300:
        raise _error_for_status(status, message, retry_after, where)
    if decoded.get("status") == "error":
        raise _error_for_refusal(message, where)
    return decoded


_NOT_JSON = object()


class _Where(TypedDict):
    status: int
    endpoint: str
    method: str


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _NOT_JSON


def _message_of(envelope: dict[str, Any], secrets: tuple[str, ...]) -> str:
    raw = envelope.get("message")
    text = raw if isinstance(raw, str) else ""
    return scrub(text.strip(), secrets)[:MAX_MESSAGE_CHARS] or "Order Desk gave no message"


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every non-empty secret in ``text`` with a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _non_json_error(
    status: int, content_type: str | None, is_json: bool, where: _Where
) -> OrderDeskError:
    kind = "JSON that is not an object" if is_json else "a body that is not JSON"
    shown_type = (content_type or "no content type").split(";")[0].strip()[:60]
    if status >= 500:
        return UpstreamUnavailable(
            f"Order Desk (or a proxy in front of it) answered HTTP {status} with {kind} "
            f"({shown_type}); the service is failing, try again later",
            **where,
        )
    return UpstreamError(
        f"Order Desk answered HTTP {status} with {kind} ({shown_type}) where a JSON envelope "
        "was expected; check the store's base URL points at the Order Desk API v2",
        **where,
    )


def _error_for_status(
    status: int, message: str, retry_after: float, where: _Where
) -> OrderDeskError:
    if status in (401, 403):
        return AuthError(message, **where)
    if status == 404:
        return NotFound(message, **where)
    if status == 409:
        return Conflict(message, **where)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, **where)
    if status in (400, 413, 422):
        return InvalidRequest(message, **where)
    if status >= 500:
        return UpstreamUnavailable(message, **where)
    return UpstreamError(message, **where)


def _error_for_refusal(message: str, where: _Where) -> OrderDeskError:
    lowered = message.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        return AuthError(message, **where)
    if any(word in lowered for word in _NOT_FOUND_WORDS):
        return NotFound(message, **where)
    return InvalidRequest(message, **where)
