"""Rate limits on the OAuth endpoints, kept in the rate-limit storage of /mcp.

Every request counts in a generous per-address bucket: Claude and ChatGPT reach us from a few
shared addresses, so that bucket only stops floods (nginx's per-address limit sits in front
of it, see nginx/).

At the token and revocation endpoints the client_id is only claimed until Authlib has
authenticated the request, and a metadata-document client (Claude's) has one client_id for
all its users. So only refused requests count there, per (client_id, address): anyone can
use up the bucket of the client they name from their own address, and nobody else's.
Successful requests need a valid code, refresh token or client secret, and stay bounded by
the per-address bucket.

Registration has no client id yet, so it counts per address; /oauth/authorize (the browser
pages, which write a session row for a new visitor) counts per address too.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many

from orderdesk_mcp.config import Settings
from orderdesk_mcp.mcp.limit_storage import WindowCounters

FAILURES_PER_CLIENT_AND_ADDRESS_LIMIT = "60/minute"
# Registration has no client id yet; Claude's and ChatGPT's users share a few addresses.
REGISTRATIONS_PER_ADDRESS_LIMIT = "120/minute"
# A person's sign-in takes a handful of page views; an office behind one address many.
AUTHORIZE_PER_ADDRESS_LIMIT = "300/minute"
PER_ADDRESS_LIMIT = "600/minute"


class OAuthLimits:
    def __init__(self, settings: Settings) -> None:
        self._counters = WindowCounters(settings, "oauth")
        self.failures_per_client = parse_many(FAILURES_PER_CLIENT_AND_ADDRESS_LIMIT)
        self.registrations = parse_many(REGISTRATIONS_PER_ADDRESS_LIMIT)
        self.authorize_requests = parse_many(AUTHORIZE_PER_ADDRESS_LIMIT)
        self.per_address = parse_many(PER_ADDRESS_LIMIT)

    def _hit(self, items: list[RateLimitItem], namespace: str, identity: str) -> int | None:
        return self._counters.hit((item, f"{namespace} {identity}") for item in items)

    def _full(self, items: list[RateLimitItem], namespace: str, identity: str) -> int | None:
        return self._counters.blocked((item, f"{namespace} {identity}") for item in items)

    @staticmethod
    def _pair(client_id: str, address: str) -> str:
        return f"{address} {client_id[:200]}"

    def hit(self, endpoint: str, address: str, client_id: str | None) -> int | None:
        """Count one request; seconds to wait when a bucket is full, else None.

        With a client_id (token, revocation), the request is refused while this address has
        used up its failures for that client; `failed` counts a refusal afterwards.
        """
        waited = self._hit(self.per_address, "oauth-address", address)
        if waited is not None:
            return waited
        if client_id is None:
            return self._hit(self.registrations, f"oauth-{endpoint}-address", address)
        return self._full(
            self.failures_per_client,
            f"oauth-{endpoint}-failures",
            self._pair(client_id, address),
        )

    def failed(self, endpoint: str, address: str, client_id: str) -> None:
        """Count a refused token or revocation request against (client_id, address)."""
        self._hit(
            self.failures_per_client, f"oauth-{endpoint}-failures", self._pair(client_id, address)
        )

    def hit_authorize(self, address: str) -> int | None:
        """Count one /oauth/authorize request; seconds to wait when over the limit."""
        return self._hit(self.authorize_requests, "oauth-authorize-address", address)
