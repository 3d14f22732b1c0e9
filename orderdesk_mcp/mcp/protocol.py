"""JSON-RPC 2.0 and MCP protocol facts: versions, error codes, message shapes.

Nothing here knows about HTTP or stdio; both transports classify messages with
`parse_message` and build replies with `result_message` / `error_message`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Newest first: `initialize` answers the client's version when it is listed here, else the first.
HANDSHAKE_PROTOCOL_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26")
LATEST_HANDSHAKE_VERSION = HANDSHAKE_PROTOCOL_VERSIONS[0]
# Stateless revisions: no handshake, every request names its version in `params._meta`.
MODERN_PROTOCOL_VERSIONS: tuple[str, ...] = ("2026-07-28",)
# Everything we speak, newest first: server/discover and -32022 errors list these.
SUPPORTED_PROTOCOL_VERSIONS: tuple[str, ...] = (
    MODERN_PROTOCOL_VERSIONS + HANDSHAKE_PROTOCOL_VERSIONS
)
# The one revision whose sessions may send JSON-RPC batches (2025-06-18 removed them).
BATCH_PROTOCOL_VERSIONS: frozenset[str] = frozenset({"2025-03-26"})

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# MCP: resources/read of a URI that does not exist.
RESOURCE_NOT_FOUND = -32002
# Implementation-defined server error: transport refusals (auth, session, limits) and an
# upstream failure while reading a resource.
SERVER_ERROR = -32000
# 2026-07-28: HTTP headers disagree with the body, or a required one is missing or malformed.
HEADER_MISMATCH = -32020
# 2026-07-28: the request's version is not one we speak (data lists the ones we do).
UNSUPPORTED_PROTOCOL_VERSION = -32022

RequestId = str | int

# No MCP message needs deeper JSON than this; deeper input would only exhaust the recursion
# of every later step (validation, audit redaction, normalisation).
MAX_JSON_DEPTH = 64
# A batch runs its messages one after another on one worker thread; keep that bounded.
MAX_BATCH_MESSAGES = 20


class JsonRpcError(Exception):
    """A failure that becomes a JSON-RPC error object; `message` is shown to the client."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> JsonRpcError:
    return JsonRpcError(INVALID_PARAMS, message)


@dataclass(frozen=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ClientResponse:
    """A reply from the client to a server request (we send none, so it is only acknowledged)."""

    id: RequestId | None


Message = Request | Notification | ClientResponse


# A reply repeats its request's id, so an id is bounded like every other echoed value: a
# 900 KB id would otherwise make a 900 KB reply. Clients use counters and UUIDs.
MAX_REQUEST_ID_CHARS = 256
_MAX_INT_ID = 2**63 - 1


def _is_request_id(value: Any) -> bool:
    # bool is an int subclass in Python, but `true` is not a valid JSON-RPC id.
    if isinstance(value, str):
        return len(value) <= MAX_REQUEST_ID_CHARS
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_INT_ID


def request_id_of(raw: Any) -> RequestId | None:
    """The id of a message, when it has a usable one (for error replies to bad messages)."""
    if isinstance(raw, dict) and _is_request_id(raw.get("id")):
        value: RequestId = raw["id"]
        return value
    return None


def parse_message(raw: Any) -> Message:
    """Classify one decoded JSON value as a request, notification or response.

    Raises JsonRpcError(INVALID_REQUEST) saying what is wrong with the message.
    """
    if not isinstance(raw, dict):
        raise JsonRpcError(INVALID_REQUEST, "a JSON-RPC message must be a JSON object")
    if raw.get("jsonrpc") != "2.0":
        raise JsonRpcError(INVALID_REQUEST, 'a JSON-RPC message must have "jsonrpc": "2.0"')
    if "method" not in raw:
        if ("result" in raw or "error" in raw) and (
            raw.get("id") is None or _is_request_id(raw.get("id"))
        ):
            return ClientResponse(id=raw.get("id"))
        raise JsonRpcError(
            INVALID_REQUEST, 'a JSON-RPC message needs a "method" (request) or a "result" (reply)'
        )
    method = raw["method"]
    if not isinstance(method, str) or not method:
        raise JsonRpcError(INVALID_REQUEST, '"method" must be a non-empty string')
    params = raw.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise JsonRpcError(INVALID_REQUEST, 'MCP "params" must be a JSON object when present')
    if "id" not in raw:
        return Notification(method=method, params=params)
    if not _is_request_id(raw["id"]):
        raise JsonRpcError(
            INVALID_REQUEST,
            f'a request "id" must be a string of at most {MAX_REQUEST_ID_CHARS} characters or '
            "a 64-bit integer",
        )
    return Request(id=raw["id"], method=method, params=params)


class EncodedResult(dict[str, Any]):
    """A result object that carries its own compact JSON text, so a reply is spliced, not
    encoded again (tools/list pages, tool results). Never changed after it is made.

    `json_text` is exactly `compact_json(self)`; whoever builds one guarantees that.
    """

    __slots__ = ("json_text",)

    def __init__(self, value: dict[str, Any] | None = None, json_text: str = "") -> None:
        super().__init__(value or {})
        self.json_text = json_text or compact_json(self)


def compact_json(value: Any) -> str:
    """How replies are encoded: compact, ASCII-only JSON."""
    return json.dumps(value, separators=(",", ":"))


def encode_message(message: Any) -> str:
    """`compact_json(message)`, with an EncodedResult's text spliced in instead of re-encoded.

    The output is byte-for-byte what `compact_json` would give. A batch (a list of replies)
    is encoded reply by reply.
    """
    if isinstance(message, list):
        return "[" + ",".join(encode_message(item) for item in message) + "]"
    if isinstance(message, dict):
        result = message.get("result")
        if isinstance(result, EncodedResult) and list(message) == _RESULT_KEYS:
            return (
                '{"jsonrpc":'
                + compact_json(message["jsonrpc"])
                + ',"id":'
                + compact_json(message["id"])
                + ',"result":'
                + result.json_text
                + "}"
            )
    return compact_json(message)


_RESULT_KEYS = ["jsonrpc", "id", "result"]


def result_message(request_id: RequestId, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_message(request_id: RequestId | None, error: JsonRpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_error()}


def negotiate_version(requested: Any) -> str:
    """The version `initialize` answers: the client's if it has a handshake, else our latest.

    A client asking for 2026-07-28 through `initialize` gets 2025-11-25, as the reference
    SDKs answer: the stateless revision has no handshake to negotiate it with.
    """
    if isinstance(requested, str) and requested in HANDSHAKE_PROTOCOL_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def with_fields(
    result: dict[str, Any], fields: dict[str, Any], fields_json: str | None = None
) -> dict[str, Any]:
    """`result` with `fields` added after its own keys (a new object; `result` is unchanged).

    An EncodedResult keeps its spliced text: appending keys it does not have gives exactly
    the text `compact_json` would, without encoding the (possibly large) result again.
    `fields_json`, when given, is `compact_json(fields)` already made.
    """
    if isinstance(result, EncodedResult) and not fields.keys() & result.keys():
        extra = (fields_json if fields_json is not None else compact_json(fields))[1:-1]
        text = result.json_text
        if not extra:
            return EncodedResult(result, text)
        joined = text[:-1] + ("," if len(result) else "") + extra + "}"
        return EncodedResult({**result, **fields}, joined)
    return {**result, **fields}


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects nest deeper than `limit` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_message_text(text: str | bytes) -> Any:
    """Decode one transport payload; raise a JSON-RPC error for bad or too-deep JSON."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonRpcError(
            PARSE_ERROR, f"parse error: JSON nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise JsonRpcError(
            PARSE_ERROR, f"parse error: the body is not valid JSON ({error})"
        ) from None
    # A batch's array is a container, not part of any message: each message gets the limit.
    messages = value if isinstance(value, list) else [value]
    if any(json_depth_exceeds(message) for message in messages):
        raise JsonRpcError(
            INVALID_REQUEST,
            f"the message nests JSON deeper than {MAX_JSON_DEPTH} levels; flatten the arguments",
        )
    return value
