"""The Order Desk API v2 client: one OrderDeskClient per store over shared UpstreamMachinery.

machinery = UpstreamMachinery.from_settings(settings, observer=metrics.record)
client = OrderDeskClient(store_id, api_key, base_url, machinery)
client.get_order(123)["order"]
"""

from orderdesk_mcp.orderdesk.arguments import ORDER_LIST_FILTERS
from orderdesk_mcp.orderdesk.cache import CacheTTLs
from orderdesk_mcp.orderdesk.client import OrderDeskClient
from orderdesk_mcp.orderdesk.errors import (
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    OrderDeskError,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
)
from orderdesk_mcp.orderdesk.machinery import RetryPolicy, UpstreamCall, UpstreamMachinery
from orderdesk_mcp.orderdesk.merge import deep_merge

__all__ = [
    "ORDER_LIST_FILTERS",
    "AuthError",
    "CacheTTLs",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "OrderDeskClient",
    "OrderDeskError",
    "RateLimited",
    "RetryPolicy",
    "UpstreamCall",
    "UpstreamError",
    "UpstreamMachinery",
    "UpstreamUnavailable",
    "deep_merge",
]
