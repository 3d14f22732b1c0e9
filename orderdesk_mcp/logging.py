"""Structured logging: JSON lines (or text), a request id on every line, secrets redacted.

The redaction filter runs on every record, whatever logger wrote it: it masks tenant API keys,
bearer tokens, Order Desk key headers, secret-looking field names and any value registered
with `register_secret` (master keys, store keys opened for a call).
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys
import threading
from collections.abc import Mapping
from typing import IO, Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

from orderdesk_mcp.config import Settings

REDACTED = "[REDACTED]"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "orderdesk_mcp_request_id", default=None
)

_PATTERNS = (
    # Tenant API keys, anywhere in a string.
    re.compile(r"odmcp_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}"),
    # OAuth access and refresh tokens (oauth/tokens.py), anywhere in a string.
    re.compile(r"od(?:at|rt)_[A-Za-z0-9_-]{20,}"),
    # The one-time token of an invite link, in a path or a URL.
    re.compile(r"(/tenant/invite/)[^/\s?#\"']+"),
    # Authorization header values and bearer tokens.
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;}]+"),
    # Order Desk key headers and key=value pairs whose name says secret.
    re.compile(
        r"(?i)((?:orderdesk[-_]api[-_]key|api[-_]?key|master[-_]?key|secret|password|token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]+"
    ),
)
_SECRET_FIELD = re.compile(r"(?i)(key|secret|token|password|authorization|credential)")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Mask this exact value in every later log line (values shorter than 8 are ignored)."""
    if len(value) >= 8:
        with _registered_lock:
            _registered.add(value)


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    with _registered_lock:
        known = tuple(_registered)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_value(name: str, value: Any) -> Any:
    """Redact a structured value: secret-looking names lose their value entirely."""
    if name and _SECRET_FIELD.search(name) and value not in (None, "", 0, False):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value("", item) for item in value]
    return value


class RedactionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now so the redacted text is what handlers print.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS:
                record.__dict__[name] = redact_value(name, value)
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter())
    return handler


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> None:
    """Send every logger's records through one redacting handler on stderr."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_orderdesk_mcp", False):
            root.removeHandler(existing)
    handler = make_handler(settings.log_format, stream)
    handler._orderdesk_mcp = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # waitress logs each queue warning; keep its level in step with ours.
    logging.getLogger("waitress").setLevel(settings.log_level)
    if settings.master_key is not None:
        register_secret(settings.master_key.reveal())
    if settings.local_api_key is not None:
        register_secret(settings.local_api_key.reveal())
    if settings.admin_token is not None:
        register_secret(settings.admin_token.reveal())


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from(incoming: str) -> str:
    """A client's X-Request-ID when it is well-formed (no header injection, bounded), else a
    new id."""
    return incoming if _REQUEST_ID_RE.fullmatch(incoming) else new_request_id()


def init_app(app: Flask) -> None:
    """Give every request an id (from a well-formed X-Request-ID, else new) and echo it."""

    @app.before_request
    def _assign_request_id() -> None:
        request_id = request_id_from(request.headers.get("X-Request-ID", ""))
        g.request_id = request_id
        g.request_id_token = request_id_var.set(request_id)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
        return response

    @app.teardown_request
    def _clear_request_id(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)
