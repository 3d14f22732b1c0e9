"""The OAuth routes: discovery documents, token, registration and revocation endpoints.

Registered only when ORDERDESK_MCP_PUBLIC_URL is set; otherwise every one of these paths is
the app's ordinary JSON 404. Browser-based clients (the MCP Inspector) call them across
origins, so they answer CORS preflights and carry `Access-Control-Allow-Origin: *` without
credentials: nothing here relies on cookies. Errors are RFC 6749 JSON bodies.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from orderdesk_mcp.oauth import events
from orderdesk_mcp.oauth.clients import ClientMetadataError, register_client
from orderdesk_mcp.oauth.limits import OAuthLimits
from orderdesk_mcp.oauth.metadata import (
    AS_METADATA_PATH,
    PRM_PATH,
    REGISTER_PATH,
    RESOURCE_PATH,
    REVOKE_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
    protected_resource_metadata,
)
from orderdesk_mcp.oauth.server import EXTENSION_KEY, OAuthServer, get_server
from orderdesk_mcp.services import get_services

bp = Blueprint("oauth", __name__)

LIMITS_KEY = "orderdesk_mcp.oauth.limits"
# Client metadata is a few hundred bytes; anything near this is not a registration.
MAX_REGISTRATION_BYTES = 16 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "600",
}
CORS_PATHS = (PRM_PATH, AS_METADATA_PATH, TOKEN_PATH, REGISTER_PATH, REVOKE_PATH)


def init_app(app: Flask) -> None:
    settings = get_services(app).settings
    if not settings.oauth_enabled:
        return
    app.extensions[EXTENSION_KEY] = OAuthServer(settings)
    app.extensions[LIMITS_KEY] = OAuthLimits(settings)
    app.register_blueprint(bp)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def oauth_error(
    endpoint: str, error: str, description: str, status: int = 400, **headers: str
) -> Response:
    events.refused(endpoint, error)
    return _json(
        {"error": error, "error_description": description},
        status,
        {"Cache-Control": "no-store", **headers},
    )


@bp.after_request
def _cors(response: Response) -> Response:
    if request.path.startswith(CORS_PATHS):
        for name, value in CORS_HEADERS.items():
            response.headers[name] = value
    return response


def _preflight() -> Response:
    return Response(status=204)


def _address() -> str:
    return request.remote_addr or "unknown"


def _rate_limited(endpoint: str, client_id: str | None) -> Response | None:
    limits: OAuthLimits = get_server_limits()
    waited = limits.hit(endpoint, _address(), client_id)
    if waited is None:
        return None
    return oauth_error(
        endpoint,
        "slow_down",
        f"too many requests; retry in {waited} seconds",
        429,
        **{"Retry-After": str(waited)},
    )


def get_server_limits() -> OAuthLimits:
    limits: OAuthLimits = current_app.extensions[LIMITS_KEY]
    return limits


def _client_id_of_request() -> str:
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username:
        return str(auth.username)
    return request.form.get("client_id") or "anonymous"


# --- discovery ------------------------------------------------------------------------------


@bp.route(PRM_PATH, methods=["GET", "OPTIONS"])
@bp.route(PRM_PATH + RESOURCE_PATH, methods=["GET", "OPTIONS"])
def protected_resource() -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    return _json(protected_resource_metadata(get_server().settings))


@bp.route(AS_METADATA_PATH, methods=["GET", "OPTIONS"])
def authorization_server() -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    return _json(authorization_server_metadata(get_server().settings))


# --- endpoints ------------------------------------------------------------------------------


@bp.route(TOKEN_PATH, methods=["POST", "OPTIONS"])
def token() -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    client_id = _client_id_of_request()
    limited = _rate_limited("token", client_id)
    if limited is not None:
        return limited
    response: Response = get_server().create_token_response()
    _count_refusal("token", response, client_id)
    return response


@bp.route(REVOKE_PATH, methods=["POST", "OPTIONS"])
def revoke() -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    client_id = _client_id_of_request()
    limited = _rate_limited("revoke", client_id)
    if limited is not None:
        return limited
    response: Response = get_server().create_endpoint_response("revocation")
    _count_refusal("revoke", response, client_id)
    return response


@bp.route(REGISTER_PATH, methods=["POST", "OPTIONS"])
def register() -> Response:
    if request.method == "OPTIONS":
        return _preflight()
    limited = _rate_limited("register", None)
    if limited is not None:
        return limited
    length = request.content_length
    if length is None or length > MAX_REGISTRATION_BYTES:
        return oauth_error(
            "register",
            "invalid_client_metadata",
            f"the registration body must be JSON of at most {MAX_REGISTRATION_BYTES} bytes "
            "with a Content-Length",
            413 if length is not None else 411,
        )
    if request.mimetype != "application/json":
        return oauth_error(
            "register", "invalid_client_metadata", "send the client metadata as application/json"
        )
    try:
        raw = json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, ValueError):
        return oauth_error("register", "invalid_client_metadata", "the body is not valid JSON")
    except RecursionError:  # "[[[[..." nested past the parser's depth; never metadata
        return oauth_error(
            "register", "invalid_client_metadata", "the body's JSON is nested too deeply"
        )
    try:
        registration = register_client(raw, get_server().settings)
    except ClientMetadataError as error:
        return oauth_error("register", error.error, str(error), error.status)
    events.record(
        events.REGISTER,
        details={
            "client": registration.client.client_id,
            "client_name": registration.client.name,
            "auth_method": registration.client.row.auth_method,
        },
    )
    return _json(registration.response(), 201, {"Cache-Control": "no-store"})


def _count_refusal(endpoint: str, response: Response, client_id: str) -> None:
    if response.status_code < 400:
        return
    if response.status_code != 503:  # our own "try again", not the caller's fault
        get_server_limits().failed(endpoint, _address(), client_id)
    try:
        error = json.loads(response.get_data()).get("error", "unknown")
    except (ValueError, AttributeError):
        error = "unknown"
    events.refused(endpoint, str(error))
