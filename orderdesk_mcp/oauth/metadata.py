"""What this server tells OAuth clients about itself: RFC 9728 and RFC 8414 documents.

Every identifier is built from ORDERDESK_MCP_PUBLIC_URL (the issuer), never from the request's
Host header: a client must see the same issuer and resource whichever name it used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from orderdesk_mcp.config import Settings

SCOPES = ("read", "write")
SCOPE_CHALLENGE = "read write"  # what a 401 asks for: everything a tenant may grant
RESOURCE_PATH = "/mcp"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
REGISTER_PATH = "/oauth/register"
REVOKE_PATH = "/oauth/revoke"
PRM_PATH = "/.well-known/oauth-protected-resource"
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"
CLIENT_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
RESOURCE_NAME = "Order Desk (orderdesk-mcp)"


def issuer(settings: Settings) -> str:
    if settings.public_url is None:
        raise RuntimeError("OAuth needs ORDERDESK_MCP_PUBLIC_URL")  # a wiring bug
    return settings.public_url


def resource_url(settings: Settings) -> str:
    """The one resource tokens are bound to (RFC 8707): this server's /mcp."""
    return issuer(settings) + RESOURCE_PATH


def resource_metadata_url(settings: Settings) -> str:
    return issuer(settings) + PRM_PATH + RESOURCE_PATH


def normalise_resource(value: str, settings: Settings) -> str | None:
    """This server's resource URL when `value` names it (the public URL or its /mcp, with
    or without a trailing slash, any case of scheme and host, the default port written or
    not); None for anything else."""
    candidate = _comparable(value.strip())
    if candidate is not None and candidate in (
        _comparable(issuer(settings)),
        _comparable(resource_url(settings)),
    ):
        return resource_url(settings)
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _comparable(url: str) -> str | None:
    """A URL as RFC 3986 6.2.3 compares it: scheme and host in lower case, no default port,
    no trailing slash; the path stays case-sensitive. None when it does not parse."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.query or parts.fragment or "#" in url:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host += f":{port}"
    return f"{scheme}://{host}{parts.path.rstrip('/')}"


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    base = issuer(settings)
    return {
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "registration_endpoint": base + REGISTER_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "scopes_supported": list(SCOPES),
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,
    }


def protected_resource_metadata(settings: Settings) -> dict[str, Any]:
    return {
        "resource": resource_url(settings),
        "authorization_servers": [issuer(settings)],
        "scopes_supported": list(SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": RESOURCE_NAME,
    }
