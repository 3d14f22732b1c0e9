"""Redirect URI rules: which a client may register, and when a requested one matches.

Registered: https anywhere; http only on a loopback host (a native app's local listener,
RFC 8252 7.3); a private-use scheme with a dot in it (com.example.app:/cb, RFC 8252 7.1) for
native apps. Never a fragment, never credentials in the URI.

Matching is exact string comparison, except that a loopback IP-literal redirect URI
(127.0.0.1 or [::1]) matches whatever port the client's listener got (RFC 8252 7.3).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOOPBACK_IP_HOSTS = frozenset({"127.0.0.1", "::1"})
LOOPBACK_HOSTS = LOOPBACK_IP_HOSTS | {"localhost"}
# RFC 8252 7.1: a reverse-DNS private-use scheme, e.g. com.example.app
_PRIVATE_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$")
MAX_REDIRECT_URI_CHARS = 2000


class RedirectUriError(ValueError):
    """A redirect URI a client may not register; the message says why."""


def check_registrable(uri: object) -> str:
    """Return `uri` when a client may register it, else raise RedirectUriError."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_REDIRECT_URI_CHARS:
        raise RedirectUriError("each redirect URI must be a non-empty string of reasonable length")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in uri):
        raise RedirectUriError("a redirect URI must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise RedirectUriError(f"{uri[:100]!r} is not a valid URI") from None
    scheme = parts.scheme.lower()
    if parts.fragment or "#" in uri:
        raise RedirectUriError("a redirect URI must not contain a fragment")
    if parts.username is not None or parts.password is not None:
        raise RedirectUriError("a redirect URI must not contain credentials")
    if scheme == "https":
        if not parts.hostname:
            raise RedirectUriError("an https redirect URI needs a host")
        return uri
    if scheme == "http":
        if (parts.hostname or "").lower() in LOOPBACK_HOSTS:
            return uri
        raise RedirectUriError(
            "http redirect URIs are allowed only on a loopback host (127.0.0.1, [::1], "
            "localhost); use https"
        )
    if _PRIVATE_SCHEME_RE.fullmatch(scheme) and not parts.netloc:
        return uri
    raise RedirectUriError(
        f"redirect URI scheme {scheme[:30]!r} is not allowed: use https, http on a loopback "
        "host, or a reverse-DNS private-use scheme such as com.example.app:/callback"
    )


def matches(requested: str, registered: list[str]) -> bool:
    """Whether a requested redirect URI is one of the client's (see module docstring)."""
    if requested in registered:
        return True
    try:
        asked = urlsplit(requested)
        asked_host = asked.hostname
        asked.port  # noqa: B018
    except ValueError:
        return False
    if asked.scheme != "http" or asked_host not in LOOPBACK_IP_HOSTS:
        return False
    for candidate in registered:
        try:
            known = urlsplit(candidate)
        except ValueError:
            continue
        if (
            known.scheme == "http"
            and known.hostname == asked_host
            and known.path == asked.path
            and known.query == asked.query
            and asked.username is None
            and not asked.fragment
        ):
            return True
    return False
