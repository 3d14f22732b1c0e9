"""Small HTTP helpers shared by the operator endpoints (/health/*, /metrics).

Who is asking (loopback, admin token) and a JSON error reply: kept apart from metrics.py and
health.py so neither imports the other for them.
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Response, jsonify

from orderdesk_mcp.config import Secret


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def bearer_matches(header: str | None, token: Secret | None) -> bool:
    """True when `header` is `Bearer <token>`; compared in constant time."""
    if token is None or not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.reveal().encode())


def json_error(status: int, message: str, *, bearer_challenge: bool = False) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if bearer_challenge:
        response.headers["WWW-Authenticate"] = 'Bearer realm="orderdesk-mcp admin"'
    return response
