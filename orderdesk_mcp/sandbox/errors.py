"""The one exception the sandbox's handlers raise; the app turns it into the error envelope."""

from __future__ import annotations

from collections.abc import Mapping

from orderdesk_mcp.sandbox.emulation_choices import STATUS_INVALID, STATUS_NOT_FOUND


class ApiError(Exception):
    """An Order Desk-style failure: HTTP status, the envelope's message, and extra headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def invalid(message: str) -> ApiError:
    return ApiError(STATUS_INVALID, message)


def not_found(message: str) -> ApiError:
    return ApiError(STATUS_NOT_FOUND, message)
