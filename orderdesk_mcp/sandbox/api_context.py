"""The /api/v2 blueprint's shared machinery: credentials, the bucket, envelopes, JSON bodies.

Route modules (api_orders.py, api_inventory.py) add their views to `api`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from orderdesk_mcp.sandbox.emulation_choices import (
    BATCH_BODY_MUST_BE_ARRAY,
    STATUS_RATE_LIMITED,
    TOO_MANY_REQUESTS_MESSAGE,
)
from orderdesk_mcp.sandbox.errors import ApiError, invalid
from orderdesk_mcp.sandbox.state import SandboxState
from orderdesk_mcp.sandbox.store import StoreState

API_PREFIX = "/api/v2"
STATE_KEY = "orderdesk_sandbox_state"

api = Blueprint("orderdesk_api", __name__, url_prefix=API_PREFIX)


def sandbox_state() -> SandboxState:
    state: SandboxState = current_app.extensions[STATE_KEY]
    return state


def current_store() -> StoreState:
    store: StoreState = g.store
    return store


def endpoint_template() -> str:
    """`GET /orders/{order_id}` style name of the matched route, for per-endpoint counts."""
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.removeprefix(API_PREFIX))
    # The record's own id reads {id}, as in /orders/{id} and /inventory-items/{id}.
    path = path.replace("{order_id}", "{id}").replace("{inventory_id}", "{id}")
    return f"{request.method} {path}"


@api.before_request
def authenticate_and_take_token() -> None:
    state = sandbox_state()
    store = state.authenticate(
        request.headers.get("ORDERDESK-STORE-ID"), request.headers.get("ORDERDESK-API-KEY")
    )
    g.store = store
    decision = store.bucket.take()
    if not decision.served:
        store.stats.record_rejected()
        raise ApiError(
            STATUS_RATE_LIMITED,
            TOO_MANY_REQUESTS_MESSAGE,
            {"X-Retry-After": str(decision.retry_after_s)},
        )
    g.tokens_remaining = decision.tokens_remaining
    store.stats.record_served(endpoint_template(), decision.at)


def execution_time() -> str:
    started = g.get("started", time.perf_counter())
    return f"{time.perf_counter() - started:.4f} seconds"


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def success(**fields: Any) -> Response:
    """The success envelope: status first, the resource keys, then execution_time."""
    return json_response({"status": "success", **fields, "execution_time": execution_time()})


def timing_message() -> str:
    return f"Execution took {execution_time().removesuffix(' seconds')} seconds"


def json_body() -> Any:
    """The request body as JSON; an empty, non-UTF-8 or malformed body is a 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise invalid("the request body is empty: send a JSON body")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise invalid(f"the request body is not valid JSON ({error})") from None


def json_object_body() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def json_array_body(what: str, wrapper_key: str) -> list[Any]:
    """A batch body: a top-level array (or, when allowed, {wrapper_key: [...]})."""
    body = json_body()
    if not BATCH_BODY_MUST_BE_ARRAY and isinstance(body, dict):
        body = body.get(wrapper_key)
    if not isinstance(body, list):
        raise invalid(f"the request body must be a top-level JSON array of {what}")
    return body
