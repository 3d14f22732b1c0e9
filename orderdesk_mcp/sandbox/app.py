"""`create_sandbox_app(state)`: the sandbox's own Flask app, separate from serving it."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from orderdesk_mcp.sandbox import api_inventory, api_orders  # noqa: F401  (they register views)
from orderdesk_mcp.sandbox.admin import admin
from orderdesk_mcp.sandbox.api_context import (
    API_PREFIX,
    STATE_KEY,
    api,
    execution_time,
    json_response,
)
from orderdesk_mcp.sandbox.emulation_choices import STATUS_METHOD_NOT_ALLOWED, STATUS_NOT_FOUND
from orderdesk_mcp.sandbox.errors import ApiError
from orderdesk_mcp.sandbox.middleware import SandboxMiddleware
from orderdesk_mcp.sandbox.state import SandboxState

logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> Response:
    return json_response(
        {"status": "error", "message": message, "execution_time": execution_time()}, status
    )


def create_sandbox_app(state: SandboxState) -> Flask:
    app = Flask(__name__)
    # Order Desk lists only GET/POST/PUT/DELETE; an OPTIONS reply would be an empty HTML page.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.extensions[STATE_KEY] = state
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(api)
    app.register_blueprint(admin)
    app.wsgi_app = SandboxMiddleware(app.wsgi_app, state)  # type: ignore[method-assign]

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def tokens_header(response: Response) -> Response:
        if not request.path.startswith(API_PREFIX):
            return response
        store = g.get("store") or state.stores.get(
            (request.headers.get("ORDERDESK-STORE-ID") or "").strip()
        )
        if store is not None and "X-Tokens-Remaining" not in response.headers:
            remaining = g.get("tokens_remaining")
            response.headers["X-Tokens-Remaining"] = str(
                store.bucket.peek() if remaining is None else remaining
            )
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        response = _error(error.status, error.message)
        response.headers.update(error.headers)
        if error.status == 429:
            response.headers["X-Tokens-Remaining"] = "0"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            message = (
                f"Not Found: no endpoint {request.path[:200]}; Order Desk API v2 paths "
                f"start with {API_PREFIX} (e.g. {API_PREFIX}/orders)"
            )
            response = _error(STATUS_NOT_FOUND, message)
        elif status == 405:
            message = (
                f"Method Not Allowed: {request.method} is not supported on {request.path[:200]}"
            )
            response = _error(STATUS_METHOD_NOT_ALLOWED, message)
            allowed = error.get_headers().copy()
            for name, value in allowed:
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        else:
            response = _error(status, f"{error.name}: {error.description}")
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("sandbox error on %s %s", request.method, request.path)
        return _error(500, "Internal sandbox error; see the sandbox log")

    return app
