"""A local stand-in for Order Desk API v2 (as stripe-mock is for Stripe).

from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox
with start_sandbox([SandboxStoreSpec("100001", "sk_test_1", seed="demo")]) as sb:
    requests.get(f"{sb.base_url}/orders", headers={...})
"""

from orderdesk_mcp.sandbox.app import create_sandbox_app
from orderdesk_mcp.sandbox.clock import Clock, ManualClock
from orderdesk_mcp.sandbox.faults import FaultSettings
from orderdesk_mcp.sandbox.rate_limit import max_served_in_window, max_window_excess
from orderdesk_mcp.sandbox.server import (
    RunningSandbox,
    SandboxStoreSpec,
    build_state,
    start_sandbox,
)
from orderdesk_mcp.sandbox.state import SandboxState
from orderdesk_mcp.sandbox.store import StoreState

__all__ = [
    "Clock",
    "FaultSettings",
    "ManualClock",
    "RunningSandbox",
    "SandboxState",
    "SandboxStoreSpec",
    "StoreState",
    "build_state",
    "create_sandbox_app",
    "max_served_in_window",
    "max_window_excess",
    "start_sandbox",
]
