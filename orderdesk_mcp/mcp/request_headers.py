"""The request headers 2026-07-28 mirrors from the body, and their check (HeaderMismatch).

Over Streamable HTTP a stateless request repeats its protocol version (`MCP-Protocol-Version`),
its method (`Mcp-Method`) and, for tools/call, prompts/get and resources/read, the tool or
prompt name or resource URI (`Mcp-Name`) in headers, so proxies can route on them without
reading the body. A server that reads the body must refuse a request whose headers are
missing, malformed or disagree with it: otherwise a gateway could route or rate-limit one
call while we execute another. `Mcp-Name` may carry `=?base64?...?=` for values that are not
plain ASCII. The rules and their order follow the official Python SDK (`mcp.shared.inbound`).
Transport-free: the caller passes the header values it received.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orderdesk_mcp.mcp.echo import echo
from orderdesk_mcp.mcp.protocol import HEADER_MISMATCH, JsonRpcError

VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
ROUTING_HEADERS = (VERSION_HEADER, METHOD_HEADER, NAME_HEADER)
# The body field each name-bearing method mirrors into Mcp-Name.
NAME_FIELDS: Mapping[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}

_BASE64_SENTINEL = re.compile(r"=\?base64\?(?P<payload>.*)\?=")
# RFC 9110 field values: visible ASCII, space and tab.
_HEADER_SAFE = re.compile(r"[\t\x20-\x7e]*")


def decode_header_value(value: str) -> str | None:
    """The value a header carries: verbatim, or the UTF-8 inside a base64 sentinel.

    None for a malformed sentinel (bad or non-canonical base64, bad UTF-8), so a corrupt
    header never matches a body value by accident.
    """
    match = _BASE64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match.group("payload")
    try:
        decoded = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    if base64.b64encode(decoded).decode("ascii") != payload:
        return None
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _mismatch(message: str) -> JsonRpcError:
    return JsonRpcError(HEADER_MISMATCH, message)


def _single(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The one value of a routing header; two copies are refused (readers would disagree)."""
    values = headers.get(name.lower(), ())
    if len(values) > 1:
        raise _mismatch(f"the {name} header appears more than once; send it once")
    if not values:
        return None
    value = values[0]
    if not _HEADER_SAFE.fullmatch(value):
        raise _mismatch(
            f"the {name} header holds characters a header may not carry; encode the value as "
            "=?base64?...?="
        )
    return value


def check_request_headers(
    headers: Mapping[str, Sequence[str]],
    *,
    method: str,
    params: Mapping[str, Any],
    body_version: Any,
) -> None:
    """Raise HeaderMismatch (-32020) unless the routing headers are present and agree.

    `headers` maps lower-case header names to every value received.
    """
    version = _single(headers, VERSION_HEADER)
    if version is None:
        raise _mismatch(
            f"missing {VERSION_HEADER} header: send '{VERSION_HEADER}: {echo(body_version)}' "
            "with every 2026-07-28 request"
        )
    if version != body_version:
        raise _mismatch(
            f"the {VERSION_HEADER} header {echo(version)} does not match the protocol version "
            f"{echo(body_version)} in params._meta; send the same version in both"
        )
    method_header = _single(headers, METHOD_HEADER)
    if method_header != method:
        raise _mismatch(
            f"missing {METHOD_HEADER} header: send '{METHOD_HEADER}: {echo(method)}'"
            if method_header is None
            else f"the {METHOD_HEADER} header {echo(method_header)} does not match the body's "
            f"method {echo(method)}"
        )
    field = NAME_FIELDS.get(method)
    if field is None:
        return
    body_value = params.get(field)
    if body_value is None:
        return  # the method itself answers -32602 for the missing field
    raw_name = _single(headers, NAME_HEADER)
    if raw_name is None:
        raise _mismatch(
            f"missing {NAME_HEADER} header: {method} mirrors params.{field} into it "
            "(base64 as =?base64?...?= when it is not plain ASCII)"
        )
    name = decode_header_value(raw_name)
    if name is None:
        raise _mismatch(f"the {NAME_HEADER} header carries a malformed =?base64?...?= value")
    if name != body_value:
        raise _mismatch(
            f"the {NAME_HEADER} header {echo(name)} does not match params.{field} "
            f"{echo(body_value)}; send the same value in both"
        )
