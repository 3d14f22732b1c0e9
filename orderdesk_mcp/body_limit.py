"""The request body limit, enforced by the app so that the refusal is JSON.

The app enforces the limit (`MAX_BODY_BYTES`): a body over it gets a JSON 413 from
errors.py, or a JSON-RPC one on /mcp (mcp/blueprint.py). Waitress's limit
(`SERVER_MAX_BODY_BYTES`) sits above the app's, so a client that overshoots reaches the app;
only a body over that larger ceiling (abuse, not a mistake) is cut off by waitress itself,
before it is read, instead of being buffered, and connection_guard.JsonErrorTask makes that
refusal JSON (JSON-RPC shaped on /mcp) too.
"""

from __future__ import annotations

from flask import Flask, abort, request

MAX_BODY_BYTES = 1024 * 1024
SERVER_MAX_BODY_BYTES = 4 * MAX_BODY_BYTES


def init_app(app: Flask) -> None:
    # A body of unknown length (chunked) is cut off by this limit when it is read.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def _refuse_oversized_body() -> None:
        # Flask checks MAX_CONTENT_LENGTH only when a view reads the body; a view that does
        # not (a 404, a GET with a body) would otherwise answer as if nothing were wrong.
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            abort(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
