"""JSON error replies for every path of the app (the /mcp blueprint answers in JSON-RPC shape).

A client or a monitor that hits an unknown path, a wrong method or a bug gets one JSON object
naming the problem, never Flask's HTML pages or a traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

logger = logging.getLogger(__name__)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return _internal_error(error)
    reply = jsonify(error=error.name, message=error.description or error.name, status=status)
    reply.status_code = status
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        reply.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return reply


def log_unhandled(error: BaseException) -> None:
    """Log a bug with its traceback (the log only: replies never carry one)."""
    original = getattr(error, "original_exception", None) or error
    logger.error(
        "unhandled error on %s %s",
        request.method,
        request.path,
        exc_info=(type(original), original, original.__traceback__),
    )


def _internal_error(error: BaseException) -> Response:
    request_id = g.get("request_id", "")
    log_unhandled(error)
    reply = jsonify(
        error="Internal Server Error",
        message=f"internal error; quote request id {request_id} when reporting it",
        status=500,
        request_id=request_id,
    )
    reply.status_code = 500
    return reply


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _internal_error)
