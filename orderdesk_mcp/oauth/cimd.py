"""Fetching a Client ID Metadata Document: a client_id that is an https URL.

The URL comes from anyone on the internet, so the fetch is the dangerous part (SSRF):

- https only, port 443 only, no userinfo, no fragment (any port while the operator set
  ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE, for tests and closed networks);
- the host is resolved once, and every address it resolves to must be public (no private,
  loopback, link-local, reserved, multicast or unspecified address, nor an IPv6 address
  wrapping one: IPv4-mapped, 6to4, Teredo, NAT64) unless ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE;
- the connection goes to the address that was checked (TLS still verifies the certificate
  for the URL's host name), so DNS cannot answer differently between check and connect;
- no redirects are followed and at most MAX_DOCUMENT_BYTES are read;
- the whole fetch, DNS lookup included, ends by one wall-clock deadline: every socket wait
  gets only the time left, so a server trickling a header line a second cannot hold the
  thread past it;
- the reply must be 200 with a JSON content type and a JSON object.

How many fetches run at once, and remembering failures, is cimd_gate.py's business.

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
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 3.0
TOTAL_DEADLINE_S = 6.0
DNS_TIMEOUT_S = 3.0
ALLOWED_PORTS = (443,)
MAX_DOCUMENT_BYTES = 5 * 1024
MAX_URL_CHARS = 500
# How long a fetched document is trusted: Cache-Control max-age, within these bounds.
MIN_CACHE_SECONDS = 5 * 60
DEFAULT_CACHE_SECONDS = 60 * 60
MAX_CACHE_SECONDS = 24 * 60 * 60
_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
USER_AGENT = "orderdesk-mcp (client metadata fetch)"


class MetadataDocumentError(Exception):
    """The document cannot be used; the message says why (no secrets, no internals).

    `host_wide`: the host itself failed (unresolvable, unreachable, too slow), not just this
    one document, so other URLs on it are not worth trying for a while either.
    """

    def __init__(self, message: str, *, host_wide: bool = False) -> None:
        super().__init__(message)
        self.host_wide = host_wide


class Deadline:
    """The wall-clock end of one fetch."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def left(self, at_most: float) -> float:
        """Seconds a wait may take now (at most `at_most`); TimeoutError once it has passed."""
        left = self.ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("client metadata fetch deadline passed")
        return min(at_most, left)


@dataclass(frozen=True)
class FetchedDocument:
    document: dict[str, Any]
    cache_seconds: int


def is_metadata_document_url(client_id: str) -> bool:
    return client_id.startswith("https://")


def check_url(url: str, *, any_port: bool = False) -> tuple[str, int, str]:
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
    if port not in ALLOWED_PORTS and not any_port:
        # Nothing but https's own port: no probing of other services on a host.
        raise MetadataDocumentError("a client_id URL must use https's default port (443)")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, target


# NAT64 (RFC 6052, RFC 8215): the well-known prefix carries the IPv4 address in its last 32
# bits; the local-use prefix is the operator's own network, so it is never public.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _wrapped_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64), else None."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # the relay server and the client behind it
    if ip in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return None


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL_USE:
            return False
        wrapped = _wrapped_ipv4(ip)
        if wrapped is not None:
            # Judged by where the packets end up: 2002:7f00:1:: is 127.0.0.1 through 6to4.
            return all(_is_public_ip(v4) for v4 in wrapped)
    return _is_public_ip(ip)


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


# getaddrinfo cannot be given a timeout, so it runs here and the fetch waits only until its
# deadline. A stuck lookup keeps one of these threads until the system resolver gives up;
# with all of them stuck, further lookups wait in the queue and time out the same way.
_DNS_THREADS = 2
_dns_pool = ThreadPoolExecutor(max_workers=_DNS_THREADS, thread_name_prefix="cimd-dns")


def _getaddrinfo(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve_checked(
    host: str, port: int, *, allow_private: bool, deadline: Deadline | None = None
) -> str:
    """The address to connect to; every address of the host must pass the check."""
    deadline = deadline or Deadline(TOTAL_DEADLINE_S)
    unresolved = MetadataDocumentError(
        "the client_id URL's host could not be resolved", host_wide=True
    )
    lookup = _dns_pool.submit(_getaddrinfo, host, port)
    try:
        infos = lookup.result(timeout=deadline.left(DNS_TIMEOUT_S))
    except (FutureTimeout, TimeoutError):
        lookup.cancel()
        raise MetadataDocumentError(
            "the client_id URL's host name lookup timed out", host_wide=True
        ) from None
    except (OSError, UnicodeError):
        raise unresolved from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise unresolved
    if not allow_private and not all(is_public_address(address) for address in addresses):
        raise MetadataDocumentError(
            "the client_id URL's host resolves to a private, loopback or reserved address, "
            "which this server does not fetch from"
        )
    return addresses[0]


class _DeadlineSSLSocket(ssl.SSLSocket):
    """A TLS socket whose every send and receive may wait only until the fetch's deadline
    (a plain timeout restarts with each byte that arrives)."""

    deadline: Deadline | None = None

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.left(READ_TIMEOUT_S))

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one already-checked address, verifying the certificate for `host`, all
    within `deadline`."""

    def __init__(
        self, host: str, port: int, address: str, context: ssl.SSLContext, deadline: Deadline
    ) -> None:
        super().__init__(host, port, timeout=READ_TIMEOUT_S, context=context)
        context.sslsocket_class = _DeadlineSSLSocket
        self._address = address
        self._tls = context
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection(
            (self._address, self.port), timeout=self._deadline.left(CONNECT_TIMEOUT_S)
        )
        try:
            # The handshake's own wait, as a whole, is bounded by this timeout.
            sock.settimeout(self._deadline.left(READ_TIMEOUT_S))
            # A _DeadlineSSLSocket: the context's sslsocket_class, set in __init__.
            tls = cast(_DeadlineSSLSocket, self._tls.wrap_socket(sock, server_hostname=self.host))
        except BaseException:
            sock.close()
            raise
        tls.deadline = self._deadline
        self.sock = tls


def cache_seconds(cache_control: str | None) -> int:
    if not cache_control or "no-store" in cache_control.lower():
        return MIN_CACHE_SECONDS if cache_control else DEFAULT_CACHE_SECONDS
    match = _MAX_AGE_RE.search(cache_control)
    if match is None:
        return DEFAULT_CACHE_SECONDS
    return max(MIN_CACHE_SECONDS, min(MAX_CACHE_SECONDS, int(match.group(1))))


def fetch_document(url: str, *, allow_private: bool) -> FetchedDocument:
    """Fetch and parse the metadata document at `url` within the limits above."""
    host, port, target = check_url(url, any_port=allow_private)
    deadline = Deadline(TOTAL_DEADLINE_S)
    address = resolve_checked(host, port, allow_private=allow_private, deadline=deadline)
    connection = _PinnedHTTPSConnection(host, port, address, ssl.create_default_context(), deadline)
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
        body = _read_capped(response)
        cache_control = response.getheader("Cache-Control")
    except TimeoutError:
        raise MetadataDocumentError(
            f"the client metadata document was not fetched within {TOTAL_DEADLINE_S:g} "
            "seconds (timed out)",
            host_wide=True,
        ) from None
    except OSError:  # refused, unreachable, TLS (an untrusted certificate): the host's fault
        raise MetadataDocumentError(
            "the client metadata document could not be fetched", host_wide=True
        ) from None
    except http.client.HTTPException:
        raise MetadataDocumentError("the client metadata document could not be fetched") from None
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MetadataDocumentError("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise MetadataDocumentError("the client metadata document must be a JSON object")
    return FetchedDocument(document=document, cache_seconds=cache_seconds(cache_control))


def _read_capped(response: http.client.HTTPResponse) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise MetadataDocumentError(
            f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise MetadataDocumentError(
                f"the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
            )
        chunks.append(chunk)
