"""The Streamable HTTP transport on `/mcp`: POST, DELETE, and 405 for GET.

Two eras share the endpoint. Handshake-era clients (2025-11-25, 2025-06-18, 2025-03-26)
`initialize` a session and repeat its `Mcp-Session-Id`; stateless clients (2026-07-28) send
self-describing requests (`params._meta` and the mirrored headers) that go straight to the
dispatcher, with no session required or minted (`_is_stateless` decides; stateless_http.py
answers them). Authentication, rate limits and audit are the same per request for both.

One POST carries one JSON-RPC message and gets `application/json` back (no SSE: every
method finishes within its request). The checks run in a fixed order, each failing with one
JSON-RPC-shaped body that says what to do: Host and Origin (DNS rebinding), credentials in
the query string, authentication (with a per-address failure limit), content type and size,
the per-key rate limit (the call budget or the protocol bucket, by the message's method; see
mcp/limits.py), the session, the protocol version header, then the message itself. A DELETE
that ends a live session is never refused for rate. (A declared Content-Length over the
limit is refused before all of them, app-wide, by body_limit.py; the 413 is JSON-RPC shaped
here too.)

Who may call and what they reach is an `AccessPolicy`: tenant API keys by default, the
implicit local user in local mode (`use_access`). The methods live in the dispatcher.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, InternalServerError

from orderdesk_mcp import metrics
from orderdesk_mcp.body_limit import MAX_BODY_BYTES
from orderdesk_mcp.mcp.access import AccessPolicy, Caller, tenant_access
from orderdesk_mcp.mcp.admission import Admission, AdmissionLimits
from orderdesk_mcp.mcp.dispatcher import CallScope, Dispatcher
from orderdesk_mcp.mcp.echo import echo
from orderdesk_mcp.mcp.envelope import has_modern_envelope
from orderdesk_mcp.mcp.limits import McpLimits, is_protocol_message
from orderdesk_mcp.mcp.protocol import (
    BATCH_PROTOCOL_VERSIONS,
    HANDSHAKE_PROTOCOL_VERSIONS,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MAX_BATCH_MESSAGES,
    MODERN_PROTOCOL_VERSIONS,
    SERVER_ERROR,
    ClientResponse,
    JsonRpcError,
    Notification,
    Request,
    RequestId,
    decode_message_text,
    encode_message,
    error_message,
    parse_message,
    request_id_of,
)
from orderdesk_mcp.mcp.registry import TOOLSETS
from orderdesk_mcp.mcp.request_headers import ROUTING_HEADERS, VERSION_HEADER
from orderdesk_mcp.mcp.sessions import SessionState
from orderdesk_mcp.mcp.stateless_http import answer_stateless
from orderdesk_mcp.services import get_services

logger = logging.getLogger(__name__)

bp = Blueprint("mcp", __name__)

ENDPOINT = "/mcp"
STATE_KEY = "orderdesk_mcp.mcp"
SESSION_HEADER = "Mcp-Session-Id"
TOOLSETS_HEADER = "X-MCP-Toolsets"
# The first request of stateless (2026-07-28) clients; see docs/CONFORMANCE.md.
DISCOVER_METHOD = "server/discover"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
# RFC 6750 3.1: a request without credentials gets the challenge but no error code; a wrong,
# revoked or expired token gets invalid_token.
WWW_AUTHENTICATE_MISSING = 'Bearer realm="orderdesk-mcp"'
WWW_AUTHENTICATE_INVALID = 'Bearer realm="orderdesk-mcp", error="invalid_token"'


def oauth_challenges(public_url: str | None) -> tuple[str, str]:
    """(missing, invalid) WWW-Authenticate values; with OAuth on, RFC 9728's resource_metadata
    and the scope a client should ask for."""
    if public_url is None:
        return WWW_AUTHENTICATE_MISSING, WWW_AUTHENTICATE_INVALID
    missing = (
        f'Bearer resource_metadata="{public_url}/.well-known/oauth-protected-resource{ENDPOINT}", '
        'scope="read write"'
    )
    return missing, missing + ', error="invalid_token"'


# Query parameters that look like credentials: refused so a key never lands in access logs.
_QUERY_SECRET_PARTS = ("key", "token", "auth", "secret", "password", "bearer")


@dataclass
class McpState:
    access: AccessPolicy
    dispatcher: Dispatcher
    limits: McpLimits
    allowed_hosts: frozenset[str]
    allowed_origins: frozenset[str]
    admission: Admission
    # The WWW-Authenticate values of a 401 (no token, refused token): with OAuth on they
    # point clients at the protected resource metadata (RFC 9728 5.1).
    challenge_missing: str = WWW_AUTHENTICATE_MISSING
    challenge_invalid: str = WWW_AUTHENTICATE_INVALID
    oauth_enabled: bool = False


class HttpFailure(Exception):
    """Stops a request with an HTTP status and a JSON-RPC error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        request_id: RequestId | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = JsonRpcError(code, message)
        self.request_id = request_id
        self.headers = headers or {}

    def response(self) -> Response:
        return json_reply(error_message(self.request_id, self.error), self.status, self.headers)


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    reply = Response(encode_message(body), status, mimetype="application/json")
    for name, value in (headers or {}).items():
        reply.headers[name] = value
    return reply


def empty_reply(status: int, headers: dict[str, str] | None = None) -> Response:
    reply = Response(status=status)
    reply.headers.pop("Content-Type", None)
    for name, value in (headers or {}).items():
        reply.headers[name] = value
    return reply


# --- wiring ---------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Register /mcp with tenant-key access; local mode swaps the access with `use_access`."""
    services = get_services(app)
    settings = services.settings
    challenge_missing, challenge_invalid = oauth_challenges(settings.public_url)
    app.extensions[STATE_KEY] = McpState(
        access=tenant_access(services),
        dispatcher=Dispatcher(),
        limits=McpLimits(app, settings),
        allowed_hosts=LOOPBACK_HOSTS | {host.lower() for host in settings.allowed_public_hosts},
        allowed_origins=frozenset(
            origin.rstrip("/").lower() for origin in settings.allowed_origins
        ),
        admission=Admission(
            AdmissionLimits.for_threads(
                settings.threads,
                per_tenant=settings.max_calls_per_tenant,
                per_store=settings.max_calls_per_store,
            )
        ),
        challenge_missing=challenge_missing,
        challenge_invalid=challenge_invalid,
        oauth_enabled=settings.oauth_enabled,
    )
    app.register_blueprint(bp)
    # Errors raised before the view runs (an unknown method, a body over the limit, a path
    # under /mcp that does not exist) are answered in JSON-RPC shape too; other paths keep
    # whatever handler the app already had.
    for error_class, code in ((HTTPException, None), (InternalServerError, 500)):
        previous = app.error_handler_spec[None][code].get(error_class)
        app.register_error_handler(error_class, _mcp_paths_first(previous))


def use_access(app: Flask, access: AccessPolicy) -> None:
    """Serve /mcp with another access policy (local mode)."""
    state(app).access = access


def state(app: Flask | None = None) -> McpState:
    mcp_state: McpState = (app or current_app).extensions[STATE_KEY]
    return mcp_state


def _is_mcp_path() -> bool:
    return request.path == ENDPOINT or request.path.startswith(ENDPOINT + "/")


def _mcp_paths_first(
    previous: Callable[[Any], Any] | None,
) -> Callable[[HTTPException], Any]:
    def handle(error: HTTPException) -> Any:
        if _is_mcp_path():
            return _http_error_reply(error)
        return previous(error) if previous is not None else error

    return handle


def _http_error_reply(error: HTTPException) -> Response:
    status = error.code or 500
    headers: dict[str, str] = {}
    if status == 404:
        message = f"not found: the MCP endpoint is {ENDPOINT}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {ENDPOINT}; use POST (or DELETE)"
        headers["Allow"] = "POST, DELETE"
    elif status == 413:
        message = f"request body is larger than {MAX_BODY_BYTES} bytes"
    elif status >= 500:
        request_id = _request_id()
        logger.error("unhandled error on %s", ENDPOINT, extra={"request_id": request_id})
        return json_reply(
            error_message(None, _internal_error(request_id)), 500, {"X-Request-Id": request_id}
        )
    else:
        message = error.description or error.name
    return json_reply(error_message(None, JsonRpcError(INVALID_REQUEST, message)), status, headers)


def _internal_error(request_id: str) -> JsonRpcError:
    return JsonRpcError(
        INTERNAL_ERROR,
        f"internal error; quote request id {request_id} when reporting it",
        {"request_id": request_id},
    )


def _request_id() -> str:
    existing = g.get("request_id")
    if isinstance(existing, str) and existing:
        return existing
    g.request_id = secrets.token_hex(8)
    return str(g.request_id)


# --- the view -------------------------------------------------------------------------------


@bp.route(ENDPOINT, methods=["GET", "POST", "DELETE"])
def mcp_endpoint() -> Response:
    request_id = _request_id()
    try:
        reply = _serve(state(), request_id)
    except HttpFailure as failure:
        reply = failure.response()
    except HTTPException as error:
        reply = _http_error_reply(error)
    except Exception:
        logger.exception("internal error on %s", ENDPOINT, extra={"request_id": request_id})
        reply = json_reply(error_message(None, _internal_error(request_id)), 500)
    reply.headers["X-Request-Id"] = request_id
    return reply


def _serve(mcp: McpState, request_id: str) -> Response:
    _check_host(mcp)
    _check_origin(mcp)
    if request.method != "POST" and request.headers.get(VERSION_HEADER) in MODERN_PROTOCOL_VERSIONS:
        raise HttpFailure(
            405,
            INVALID_REQUEST,
            f"2026-07-28 has no {request.method} on {ENDPOINT}: no sessions to end and no "
            "server-initiated stream (this server offers no subscriptions/listen); POST each "
            "request",
            headers={"Allow": "POST"},
        )
    if request.method == "GET":
        raise HttpFailure(
            405,
            INVALID_REQUEST,
            "this server sends no server-initiated stream: GET is not supported; POST "
            "JSON-RPC messages to /mcp",
            headers={"Allow": "POST, DELETE"},
        )
    _refuse_query_credentials()
    caller = _authenticate(mcp)
    if request.method == "DELETE":
        return _end_session(mcp, caller)
    return _post(mcp, caller, request_id)


def _charge(mcp: McpState, caller: Caller, *, protocol: bool) -> None:
    """Count one request in the key's call budget or protocol bucket; 429 when over."""
    retry_after = mcp.limits.hit_key(caller.identity, protocol=protocol)
    if retry_after is None:
        return
    metrics.record_rate_limited("api_key")
    raise HttpFailure(
        429,
        SERVER_ERROR,
        _rate_limited_message(retry_after),
        headers={"Retry-After": str(retry_after)},
    )


def _rate_limited_message(retry_after: int) -> str:
    return f"rate limit for this API key exceeded; retry in {retry_after} seconds"


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _check_host(mcp: McpState) -> None:
    host = request.headers.get("Host", "")
    if host.lower() in mcp.allowed_hosts or _host_name(host) in mcp.allowed_hosts:
        return
    raise HttpFailure(
        403,
        SERVER_ERROR,
        f"Host {echo(host)} is not served here (DNS-rebinding protection); an operator can add it "
        "to ORDERDESK_MCP_PUBLIC_HOSTS",
    )


def _check_origin(mcp: McpState) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    normalised = origin.strip().rstrip("/").lower()
    if normalised in mcp.allowed_origins:
        return
    try:
        origin_host = urlsplit(normalised).hostname or ""
    except ValueError:
        origin_host = ""
    # Pages served from this machine are not a rebinding risk; anything else must be listed.
    if origin_host in LOOPBACK_HOSTS and normalised.startswith(("http://", "https://")):
        return
    raise HttpFailure(
        403,
        SERVER_ERROR,
        f"Origin {echo(origin)} is not allowed; an operator can add it to "
        "ORDERDESK_MCP_ALLOWED_ORIGINS",
    )


def _refuse_query_credentials() -> None:
    for name, value in request.args.items(multi=True):
        lowered = name.lower()
        if any(part in lowered for part in _QUERY_SECRET_PARTS) or value.startswith("odmcp_"):
            raise HttpFailure(
                400,
                INVALID_REQUEST,
                "credentials in the URL are refused (URLs end up in logs); send the API key "
                "in the header 'Authorization: Bearer <key>' instead, and revoke a key that "
                "was put in a URL",
            )


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _authenticate(mcp: McpState) -> Caller:
    token = _bearer_token()
    caller = mcp.access.authenticate(token)
    if caller is not None:
        # A valid key is never locked out by others' failures from a shared address (NAT,
        # or a proxy whose forwarded address is not trusted); its secret cannot be guessed.
        return caller
    if token is None:
        # No credentials is how every OAuth client starts (the 401 points it at discovery),
        # and it costs no lookup: never counted or throttled, or connectors reaching us from
        # one shared address would get 429 instead of the way to sign in.
        metrics.record_auth_failure("missing")
        raise HttpFailure(
            401,
            SERVER_ERROR,
            "missing credentials: sign in with OAuth (clients that support it do so from "
            "this answer) or send 'Authorization: Bearer <key>' (`orderdesk-mcp key create`)"
            if mcp.oauth_enabled
            else "missing API key: send 'Authorization: Bearer <key>' (`orderdesk-mcp key "
            "create` makes one)",
            headers={"WWW-Authenticate": mcp.challenge_missing},
        )
    address = request.remote_addr or "unknown"
    blocked = mcp.limits.auth_blocked(address)
    if blocked is not None:
        metrics.record_rate_limited("auth_failures")
        raise HttpFailure(
            429,
            SERVER_ERROR,
            f"too many failed authentications from this address; retry in {blocked} seconds",
            headers={"Retry-After": str(blocked)},
        )
    mcp.limits.note_auth_failure(address)
    metrics.record_auth_failure("invalid")
    problem = (
        "the API key or access token is invalid, expired or revoked; an OAuth client signs "
        "in again (or refreshes), a key holder asks the operator for a new key"
        if mcp.oauth_enabled
        else "the API key is invalid or revoked; ask the operator for a new one"
    )
    raise HttpFailure(
        401, SERVER_ERROR, problem, headers={"WWW-Authenticate": mcp.challenge_invalid}
    )


def _effective_toolsets(caller: Caller) -> frozenset[str] | None:
    header = request.headers.get(TOOLSETS_HEADER)
    if header is None or not header.strip():
        return caller.toolsets
    requested = frozenset(part.strip().lower() for part in header.split(",") if part.strip())
    if not requested:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"{TOOLSETS_HEADER} names no toolset; list some of "
            + ", ".join(TOOLSETS)
            + ", or leave the header out for all of them",
        )
    unknown = sorted(requested - set(TOOLSETS))
    if unknown:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"{TOOLSETS_HEADER} names unknown toolset {echo(unknown[0])}; choose from "
            + ", ".join(TOOLSETS),
        )
    return requested if caller.toolsets is None else requested & caller.toolsets


def _end_session(mcp: McpState, caller: Caller) -> Response:
    session_id = request.headers.get(SESSION_HEADER)
    # Ending a live session is never refused for rate: a 429 would leave it open. A DELETE
    # that ends nothing is counted (protocol bucket), so a flood of them stays bounded.
    if session_id and mcp.access.sessions.end(session_id, caller.session_owner):
        return empty_reply(204)
    _charge(mcp, caller, protocol=True)
    if not session_id:
        raise HttpFailure(400, INVALID_REQUEST, f"DELETE needs the {SESSION_HEADER} header")
    raise _session_not_found()


def _session_not_found(request_id: RequestId | None = None) -> HttpFailure:
    return HttpFailure(
        404,
        SERVER_ERROR,
        "session not found: it ended, expired or never existed; send initialize to start a new one",
        request_id=request_id,
    )


def _read_json_body() -> Any:
    content_type = request.mimetype or ""
    if content_type != "application/json":
        raise HttpFailure(
            415,
            INVALID_REQUEST,
            f"Content-Type must be application/json (got {echo(content_type or 'none')})",
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise HttpFailure(
            413, INVALID_REQUEST, f"request body is larger than {MAX_BODY_BYTES} bytes"
        )
    accept = request.headers.get("Accept")
    # The plain text test first: it settles what clients send without parsing the header.
    if accept and not (
        "application/json" in accept.lower() or request.accept_mimetypes.accept_json
    ):
        raise HttpFailure(
            406, INVALID_REQUEST, "this server answers application/json; accept it in Accept"
        )
    try:
        return decode_message_text(request.get_data(cache=False))
    except JsonRpcError as error:
        raise HttpFailure(400, error.code, error.message) from None


def _post(mcp: McpState, caller: Caller, request_id: str) -> Response:
    try:
        raw = _read_json_body()
    except HttpFailure:
        _charge(mcp, caller, protocol=False)  # junk never rides the protocol bucket
        raise
    # A batch is charged for its first message here and for each further one in _batch.
    _charge(
        mcp, caller, protocol=is_protocol_message(raw[0] if isinstance(raw, list) and raw else raw)
    )
    toolsets = _effective_toolsets(caller)
    if _is_stateless(raw):
        return _stateless(mcp, _scope(mcp, caller, toolsets, request_id), raw)
    if isinstance(raw, list):
        return _batch(mcp, caller, toolsets, request_id, raw)
    try:
        message = parse_message(raw)
    except JsonRpcError as error:
        raise HttpFailure(400, error.code, error.message, request_id=request_id_of(raw)) from None
    if isinstance(message, Request) and message.method == "initialize":
        return _initialize(mcp, caller, message)
    _require_session(mcp, caller, request_id_of(raw))
    scope = _scope(mcp, caller, toolsets, request_id)
    reply = _handle(mcp, message, scope)
    if reply is None:
        return empty_reply(202)
    return json_reply(reply)


def _is_stateless(raw: Any) -> bool:
    """Whether a POST is a 2026-07-28 request rather than part of a handshake session.

    A 2026-07-28 version header decides alone (a stray session id is ignored, as that
    revision says). Otherwise a session id or `initialize` means the handshake era; without
    them, a header naming a version we do not speak (answered -32022, as the SDK does), an
    envelope in `params._meta`, or server/discover (which exists only in 2026-07-28) means
    stateless. What remains (no session, no envelope) is a handshake client that forgot
    its session id, and gets the 400 that says so.
    """
    version = request.headers.get(VERSION_HEADER)
    if version in MODERN_PROTOCOL_VERSIONS:
        return True
    method = raw.get("method") if isinstance(raw, dict) else None
    if request.headers.get(SESSION_HEADER) or method == "initialize":
        return False
    if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        return True
    params = raw.get("params") if isinstance(raw, dict) else None
    return method == DISCOVER_METHOD or (isinstance(params, dict) and has_modern_envelope(params))


def _stateless(mcp: McpState, scope: CallScope, raw: Any) -> Response:
    # One environ lookup per header (getlist walks every header); WSGI joins repeats anyway.
    headers = {
        name.lower(): [value]
        for name in ROUTING_HEADERS
        if (value := request.headers.get(name)) is not None
    }
    answer = answer_stateless(mcp.dispatcher, scope, raw, headers)
    if answer.body is None:
        return empty_reply(answer.status)
    return json_reply(answer.body, answer.status)


def _initialize(mcp: McpState, caller: Caller, message: Request) -> Response:
    try:
        handshake = mcp.dispatcher.negotiate(message.params)
    except JsonRpcError as error:
        return json_reply(error_message(message.id, error))
    session_id = mcp.access.sessions.create(
        caller.session_owner, handshake.protocol_version, handshake.client_info
    )
    return json_reply(
        {"jsonrpc": "2.0", "id": message.id, "result": handshake.result},
        headers={SESSION_HEADER: session_id},
    )


def _require_session(mcp: McpState, caller: Caller, message_id: RequestId | None) -> SessionState:
    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"missing {SESSION_HEADER} header: send initialize first, then repeat the session "
            "id it returned on every request",
            request_id=message_id,
        )
    session = mcp.access.sessions.get(session_id, caller.session_owner)
    if session is None:
        raise _session_not_found(message_id)
    _check_version_header(session, message_id)
    return session


def _check_version_header(session: SessionState, message_id: RequestId | None) -> None:
    """The header must name a version we speak; missing means the negotiated one.

    A different supported version than the negotiated one is accepted, as the reference
    SDKs do: nothing here behaves differently between them except batches, and those follow
    the version negotiated at initialize.
    """
    version = request.headers.get(VERSION_HEADER)
    if version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
        return
    raise HttpFailure(
        400,
        INVALID_REQUEST,
        f"unsupported {VERSION_HEADER} {version[:40]!r}; this session negotiated "
        f"{session.protocol_version}, and sessions speak " + ", ".join(HANDSHAKE_PROTOCOL_VERSIONS),
        request_id=message_id,
    )


def _scope(
    mcp: McpState, caller: Caller, toolsets: frozenset[str] | None, request_id: str
) -> CallScope:
    return CallScope(
        resolver=mcp.access.resolver_for(caller),
        read_only=caller.read_only,
        toolsets=toolsets,
        tenant_id=caller.tenant_id,
        key_id=caller.key_id,
        request_id=request_id,
        audit=mcp.access.audit,
        admission=mcp.admission,
    )


def _handle(
    mcp: McpState, message: Request | Notification | ClientResponse, scope: CallScope
) -> dict[str, Any] | None:
    if isinstance(message, Request):
        return mcp.dispatcher.handle_request(message, scope)
    if isinstance(message, Notification):
        mcp.dispatcher.handle_notification(message)
    return None


def _batch(
    mcp: McpState,
    caller: Caller,
    toolsets: frozenset[str] | None,
    request_id: str,
    raw: list[Any],
) -> Response:
    session = _require_session(mcp, caller, None)
    if session.protocol_version not in BATCH_PROTOCOL_VERSIONS:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"JSON-RPC batches are not part of protocol {session.protocol_version}; send one "
            "message per request",
        )
    if not raw:
        raise HttpFailure(400, INVALID_REQUEST, "an empty batch is not a valid JSON-RPC message")
    if len(raw) > MAX_BATCH_MESSAGES:
        raise HttpFailure(
            400,
            INVALID_REQUEST,
            f"a batch may hold at most {MAX_BATCH_MESSAGES} messages (got {len(raw)}); send "
            "the rest in further requests",
        )
    scope = _scope(mcp, caller, toolsets, request_id)
    replies: list[dict[str, Any]] = []
    for position, item in enumerate(raw):
        try:
            message = parse_message(item)
        except JsonRpcError as error:
            replies.append(error_message(request_id_of(item), error))
            continue
        # Each message counts in its own bucket; the request itself counted the first.
        retry_after = (
            mcp.limits.hit_key(caller.identity, protocol=is_protocol_message(item))
            if position
            else None
        )
        if retry_after is not None:
            metrics.record_rate_limited("api_key")
            if isinstance(message, Request):  # notifications and responses get no reply
                replies.append(
                    error_message(
                        message.id, JsonRpcError(SERVER_ERROR, _rate_limited_message(retry_after))
                    )
                )
            continue
        if isinstance(message, Request) and message.method == "initialize":
            replies.append(
                error_message(
                    message.id,
                    JsonRpcError(INVALID_REQUEST, "initialize must not be part of a batch"),
                )
            )
            continue
        reply = _handle(mcp, message, scope)
        if reply is not None:
            replies.append(reply)
    if not replies:
        return empty_reply(202)
    return json_reply(replies)
