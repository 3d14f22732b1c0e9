"""The errors of the Order Desk client: one root, one branch per cause.

Every error carries the upstream message (``message``), the HTTP status when there was a reply
(``status``), the endpoint template such as ``/orders/{id}`` (``endpoint``) and the HTTP method.
None of them ever carries the API key: messages are scrubbed before an error is built.

Retry safety at a glance:

- ``RateLimited``: safe to retry after ``retry_after`` seconds (the request was not served).
- ``UpstreamUnavailable``: safe to retry for reads and idempotent writes (PUT, DELETE); for a
  POST check ``write_may_have_happened`` and reconcile first (e.g. list shipments).
- ``AuthError``, ``NotFound``, ``InvalidRequest``, ``Conflict``, ``UpstreamError``: retrying the
  same request gives the same answer; fix the input (or re-read the record) first.
"""

from __future__ import annotations

from typing import Any


class OrderDeskError(Exception):
    """Root of every error the client raises.

    Attributes: ``message`` (Order Desk's text, or ours when there was no usable reply),
    ``status`` (int HTTP status, None without a reply), ``endpoint`` (template, e.g.
    ``/orders/{id}``), ``method`` (``GET``, ``POST``, ...; empty when raised before a request).
    """

    def __init__(
        self, message: str, *, status: int | None = None, endpoint: str = "", method: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.endpoint = endpoint
        self.method = method

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.endpoint) if part)
        details = [f"HTTP {self.status}" if self.status is not None else "", where]
        shown = ", ".join(part for part in details if part)
        return f"{self.message} ({shown})" if shown else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"endpoint={self.endpoint!r}, method={self.method!r})"
        )


class AuthError(OrderDeskError):
    """The store id or API key was refused (HTTP 401/403). Not retryable: fix the credentials."""


class NotFound(OrderDeskError):
    """The order, item, shipment or inventory item does not exist (HTTP 404). Not retryable."""


class RateLimited(OrderDeskError):
    """Order Desk's rate limit (or the caller's deadline) stopped the call.

    ``retry_after`` is how many seconds to wait before trying again. Safe to retry after that:
    the request was not served.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status: int | None = None,
        endpoint: str = "",
        method: str = "",
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint, method=method)
        self.retry_after = retry_after


class Busy(RateLimited):
    """This server already has as many Order Desk requests in flight as it allows (for the
    whole server, the tenant or the store): nothing was sent. Retry after ``retry_after``."""


class InvalidRequest(OrderDeskError, ValueError):
    """The request itself is wrong: a bad id, an unknown filter, a body Order Desk refused
    (HTTP 400/422, or a ``"status": "error"`` reply). Not retryable as is: fix the input."""


class Conflict(OrderDeskError):
    """The record is not the version the caller expected (its ``date_updated`` differs from
    ``expected_date_updated``), or Order Desk answered 409. Nothing was written.

    ``current`` is the record as just read when we refused (None for a 409). Not retryable
    blindly: decide again with the current record, then retry.
    """

    def __init__(
        self,
        message: str,
        *,
        current: dict[str, Any] | None = None,
        status: int | None = None,
        endpoint: str = "",
        method: str = "",
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint, method=method)
        self.current = current


class UpstreamUnavailable(OrderDeskError):
    """Order Desk could not be reached or failed (connection error, timeout, HTTP 5xx).

    Reads, PUT and DELETE were already retried with backoff; retrying later is safe for them.
    ``write_may_have_happened`` is True for a POST that may have reached Order Desk: check
    (for example list the order's shipments) before sending it again.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        method: str = "",
        write_may_have_happened: bool = False,
    ) -> None:
        super().__init__(message, status=status, endpoint=endpoint, method=method)
        self.write_may_have_happened = write_may_have_happened


class UpstreamError(OrderDeskError):
    """Any other failure: an unexpected status or a reply that is not the JSON we expect.

    Not known to be transient; retrying is unlikely to help.
    """
