"""`/_sandbox/...`: run-time control for tests and load runs, reachable from loopback only."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from flask import Blueprint, Response, request

from orderdesk_mcp.sandbox.api_context import json_response, sandbox_state
from orderdesk_mcp.sandbox.errors import ApiError, invalid
from orderdesk_mcp.sandbox.faults import FaultSettings, fault_settings_from_json

ADMIN_PREFIX = "/_sandbox"

admin = Blueprint("sandbox_admin", __name__, url_prefix=ADMIN_PREFIX)


def is_loopback(remote_addr: str | None) -> bool:
    """True only for 127.0.0.0/8, ::1 and IPv4-mapped loopback; anything unparseable is refused."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@admin.before_request
def loopback_only() -> None:
    if not is_loopback(request.remote_addr):
        raise ApiError(403, "the sandbox admin endpoint only answers loopback clients")


def _optional_object_body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def _store_id(body: dict[str, Any]) -> str | None:
    raw = body.get("store_id", request.args.get("store_id"))
    if raw in (None, ""):
        return None
    return str(raw)


@admin.post("/faults")
def set_faults() -> Response:
    """Body: optional store_id plus latency_ms, error_rate, force_429, rate_429, drop_rate,
    short_batch_results."""
    body = _optional_object_body()
    settings = fault_settings_from_json(body)
    state = sandbox_state()
    store_id = _store_id(body)
    state.set_faults(settings, store_id)
    return json_response({"status": "success", "store_id": store_id, "faults": settings.to_json()})


@admin.get("/faults")
def get_faults() -> Response:
    state = sandbox_state()
    faults = {sid: store.faults.settings.to_json() for sid, store in state.stores.items()}
    return json_response({"status": "success", "faults": faults})


@admin.get("/stats")
def get_stats() -> Response:
    state = sandbox_state()
    store_id = _store_id({})
    if store_id is not None:
        stats = state.store_or_error(store_id).stats.snapshot()
        return json_response({"status": "success", "store_id": store_id, "stats": stats})
    every = {sid: store.stats.snapshot() for sid, store in state.stores.items()}
    return json_response({"status": "success", "stores": every})


@admin.post("/reset")
def reset() -> Response:
    """Clear stats, remove faults and refill buckets (of one store, or of all)."""
    body = _optional_object_body()
    state = sandbox_state()
    store_id = _store_id(body)
    targets = [state.store_or_error(store_id)] if store_id else list(state.stores.values())
    for store in targets:
        store.stats.reset()
        store.faults.configure(FaultSettings())
        store.bucket.refill_completely()
    return json_response({"status": "success", "reset": [store.store_id for store in targets]})
