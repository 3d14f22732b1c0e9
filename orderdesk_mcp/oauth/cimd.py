"""Fetching a Client ID Metadata Document: a client_id that is an https URL.

The URL comes from anyone on the internet, so the fetch is the dangerous part (SSRF):

- https only, no userinfo, no fragment, default or explicit port;
- the host is resolved once, and every address it resolves to must be public (no private,
  loopback, link-local, reserved, multicast or unspecified address) unless the operator set
  ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE;
- the connection goes to the address that was checked (TLS still verifies the certificate
  for the URL's host name), so DNS cannot answer differently between check and connect;
- no redirects are followed, connect and read time out in a few seconds, the whole fetch has
  a deadline, and at most MAX_DOCUMENT_BYTES are read;
- the reply must be 200 with a JSON content type and a JSON object.

Certificates are checked against the system's trust store (ssl.create_default_context,
which honours SSL_CERT_FILE).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 3.0
TOTAL_DEADLINE_S = 6.0
MAX_DOCUMENT_BYTES = 5 * 1024
MAX_URL_CHARS = 500
# How long a fetched document is trusted: Cache-Control max-age, within these bounds.
MIN_CACHE_SECONDS = 5 * 60
DEFAULT_CACHE_SECONDS = 60 * 60
MAX_CACHE_SECONDS = 24 * 60 * 60
_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
USER_AGENT = "orderdesk-mcp (client metadata fetch)"


class MetadataDocumentError(Exception):
    """The document cannot be used; the message says why (no secrets, no internals)."""


@dataclass(frozen=True)
class FetchedDocument:
    document: dict[str, Any]
    cache_seconds: int


def is_metadata_document_url(client_id: str) -> bool:
    return client_id.startswith("https://")


def check_url(url: str) -> tuple[str, int, str]:
    """(host, port, path with query) of an acceptable document URL, else the error."""
    if len(url) > MAX_URL_CHARS:
        raise MetadataDocumentError(f"the client_id URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise MetadataDocumentError("the client_id is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise MetadataDocumentError("a client_id URL must be an https URL with a host")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise MetadataDocumentError("a client_id URL must not carry credentials or a fragment")
    if parts.path in ("", "/"):
        raise MetadataDocumentError("a client_id URL must have a path (the document's location)")
    if any(ch.isspace() for ch in url):
        raise MetadataDocumentError("a client_id URL must not contain spaces")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, target


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve_checked(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to; every address of the host must pass the check."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise MetadataDocumentError("the client_id URL's host could not be resolved") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise MetadataDocumentError("the client_id URL's host could not be resolved")
    if not allow_private and not all(is_public_address(address) for address in addresses):
        raise MetadataDocumentError(
            "the client_id URL's host resolves to a private, loopback or reserved address, "
            "which this server does not fetch from"
        )
    return addresses[0]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one already-checked address, verifying the certificate for `host`."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=READ_TIMEOUT_S, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), timeout=CONNECT_TIMEOUT_S)
        sock.settimeout(READ_TIMEOUT_S)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def cache_seconds(cache_control: str | None) -> int:
    if not cache_control or "no-store" in cache_control.lower():
        return MIN_CACHE_SECONDS if cache_control else DEFAULT_CACHE_SECONDS
    match = _MAX_AGE_RE.search(cache_control)
    if match is None:
        return DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, int(match.group(1))))


def fetch_document(url: str, *, allow_private: bool) -> FetchedDocument:
    """Fetch and parse the metadata document at `url` within the limits above."""
    host, port, target = check_url(url)
    address = resolve_checked(host, port, allow_private=allow_private)
    started = time.monotonic()
    connection = _PinnedHTTPSConnection(host, port, address, ssl.create_default_context())
    try:
        connection.request(
            "GET", target, headers={"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise MetadataDocumentError(
                f"the client metadata document answered HTTP {response.status} (redirects "
                "are not followed); it must answer 200 with JSON"
            )
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise MetadataDocumentError("the client metadata document is not application/json")
        body = _read_capped(response, started)
        cache_control = response.getheader("Cache-Control")
    except (OSError, http.client.HTTPException) as error:
        reason = "timed out" if isinstance(error, TimeoutError) else "could not be fetched"
        raise MetadataDocumentError(f"the client metadata document {reason}") from None
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MetadataDocumentError("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise MetadataDocumentError("the client metadata document must be a JSON object")
    return FetchedDocument(document=document, cache_seconds=cache_seconds(cache_control))


def _read_capped(response: http.client.HTTPResponse, started: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise MetadataDocumentError(
            f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() - started > TOTAL_DEADLINE_S:
            raise MetadataDocumentError("the client metadata document timed out")
        chunk = response.read1(1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise MetadataDocumentError(
                f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
            )
        chunks.append(chunk)
