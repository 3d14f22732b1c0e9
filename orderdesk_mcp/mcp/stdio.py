"""The stdio transport: newline-delimited JSON-RPC on stdin/stdout, for desktop clients.

The client starts `orderdesk-mcp stdio` as a subprocess; each line on stdin is one message
(or, on a 2025-03-26 session, a batch), each reply one line on stdout. Nothing else may be
written to stdout: logs go to stderr. The same dispatcher as over HTTP answers, as the local
user of local mode (one store, from ORDERDESK_STORE_ID / ORDERDESK_API_KEY).

Both eras are served on the same pipes, message by message: a request whose `params._meta`
names a protocol version is a stateless 2026-07-28 request (server/discover is how such
clients probe), anything else follows the initialize handshake as before.
"""

from __future__ import annotations

import logging
import secrets
from typing import IO, Any

from orderdesk_mcp.logging import request_id_var
from orderdesk_mcp.mcp.access import AccessPolicy, Caller
from orderdesk_mcp.mcp.dispatcher import CallScope, Dispatcher
from orderdesk_mcp.mcp.envelope import has_modern_envelope, read_envelope
from orderdesk_mcp.mcp.protocol import (
    BATCH_PROTOCOL_VERSIONS,
    INVALID_REQUEST,
    MAX_BATCH_MESSAGES,
    JsonRpcError,
    Notification,
    Request,
    decode_message_text,
    encode_message,
    error_message,
    parse_message,
    request_id_of,
    result_message,
)

logger = logging.getLogger(__name__)


class StdioSession:
    """One client on one pair of pipes: its negotiated version and the caller it acts as."""

    def __init__(self, dispatcher: Dispatcher, access: AccessPolicy, caller: Caller) -> None:
        self.dispatcher = dispatcher
        self.access = access
        self.caller = caller
        self.protocol_version: str | None = None

    def _scope(self) -> CallScope:
        return CallScope(
            resolver=self.access.resolver_for(self.caller),
            read_only=self.caller.read_only,
            toolsets=self.caller.toolsets,
            tenant_id=self.caller.tenant_id,
            key_id=self.caller.key_id,
            request_id=request_id_var.get() or secrets.token_hex(8),
            audit=self.access.audit,
        )

    def handle_line(self, line: str) -> str | None:
        """The reply line for one input line (None when nothing is to be sent)."""
        token = request_id_var.set(secrets.token_hex(8))
        try:
            reply = self._handle_text(line)
        finally:
            request_id_var.reset(token)
        return None if reply is None else encode_message(reply)

    def _handle_text(self, line: str) -> Any:
        try:
            raw = decode_message_text(line)
        except JsonRpcError as error:
            return error_message(None, error)
        if isinstance(raw, list):
            return self._batch(raw)
        return self._one(raw, in_batch=False)

    def _batch(self, raw: list[Any]) -> Any:
        if self.protocol_version not in BATCH_PROTOCOL_VERSIONS:
            return error_message(
                None,
                JsonRpcError(
                    INVALID_REQUEST,
                    "JSON-RPC batches are only accepted on a 2025-03-26 session; send one "
                    "message per line",
                ),
            )
        if not raw:
            return error_message(None, JsonRpcError(INVALID_REQUEST, "an empty batch is invalid"))
        if len(raw) > MAX_BATCH_MESSAGES:
            return error_message(
                None,
                JsonRpcError(
                    INVALID_REQUEST, f"a batch may hold at most {MAX_BATCH_MESSAGES} messages"
                ),
            )
        replies = [reply for item in raw if (reply := self._one(item, in_batch=True)) is not None]
        return replies or None

    def _one(self, raw: Any, *, in_batch: bool) -> dict[str, Any] | None:
        try:
            message = parse_message(raw)
        except JsonRpcError as error:
            return error_message(request_id_of(raw), error)
        if isinstance(message, Request) and message.method == "initialize":
            if in_batch:
                return error_message(
                    message.id, JsonRpcError(INVALID_REQUEST, "initialize must not be batched")
                )
            try:
                handshake = self.dispatcher.negotiate(message.params)
            except JsonRpcError as error:
                return error_message(message.id, error)
            self.protocol_version = handshake.protocol_version
            return result_message(message.id, handshake.result)
        if isinstance(message, Request) and has_modern_envelope(message.params):
            # No headers on stdio: the envelope alone says what the request is.
            try:
                envelope = read_envelope(message.method, message.params)
            except JsonRpcError as error:
                return error_message(message.id, error)
            return self.dispatcher.handle_request(message, self._scope(), envelope)
        if isinstance(message, Request):
            return self.dispatcher.handle_request(message, self._scope())
        if isinstance(message, Notification):
            self.dispatcher.handle_notification(message)
        return None


def serve_stdio(session: StdioSession, stdin: IO[str], stdout: IO[str]) -> None:
    """Answer line by line until stdin closes."""
    for line in stdin:
        if not line.strip():
            continue
        reply = session.handle_line(line)
        if reply is not None:
            stdout.write(reply + "\n")
            stdout.flush()
    logger.info("stdin closed; stdio session ends")
