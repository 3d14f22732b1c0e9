"""MCP prompts: ready-made workflows that steer a model through our tools by name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orderdesk_mcp.mcp.echo import echo, echo_names


class PromptNotFound(LookupError):
    """No prompt by that name (JSON-RPC -32602); the message lists the prompts there are."""


class InvalidPromptArguments(ValueError):
    """A required argument is missing or one has a value we cannot use (JSON-RPC -32602)."""


@dataclass(frozen=True)
class PromptArgument:
    name: str
    description: str
    required: bool = False

    def to_mcp(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "required": self.required}


@dataclass(frozen=True)
class PromptDef:
    name: str
    title: str
    description: str
    arguments: tuple[PromptArgument, ...]
    render: Callable[[Mapping[str, str]], str]

    def to_mcp(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "arguments": [argument.to_mcp() for argument in self.arguments],
        }


STORE = PromptArgument("store", "Store alias or Order Desk store id; omit for the default store.")


def _store_clause(arguments: Mapping[str, str]) -> tuple[str, str]:
    """(how to name the store in prose, the `store=` argument to repeat in every tool call)."""
    store = arguments.get("store")
    if not store:
        return "my default Order Desk store", ""
    return f"my Order Desk store {store!r}", f', store="{store}"'


def _limit(arguments: Mapping[str, str]) -> int:
    raw = arguments.get("limit") or "20"
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 100:
        raise InvalidPromptArguments(f"limit: {raw!r} is not a whole number from 1 to 100.")
    return int(raw)


def _triage_new_orders(arguments: Mapping[str, str]) -> str:
    where, store = _store_clause(arguments)
    folder = arguments.get("folder") or "New"
    limit = _limit(arguments)
    return f"""Please triage the orders waiting in the "{folder}" folder of {where}.

1. Call get_store({store.lstrip(", ")}) to see the folders (ids and names) you can propose.
2. Call list_orders(folder="{folder}", limit={limit}, fields=["source_id", "source_name",
   "email", "shipping", "order_total", "payment_status", "date_added", "order_items"]{store}).
   If next_offset is not null, say how many more orders wait there.
3. For each order decide where it should go next, for example: paid and complete -> the folder
   for orders ready to ship; payment not Captured/Approved, a missing or odd shipping address,
   an unusual total or quantity -> leave it and explain what needs checking. Use
   get_order(order_id=...{store}) when you need more detail.
4. Show me a table: order id, cart number (source_id), customer, total, payment status,
   proposed folder and the reason.
5. Do not move anything yet. When I confirm, call move_orders(order_ids=[...], folder="..."{store})
   once per destination folder. Moving runs the destination folder's rules (they can e-mail
   customers or send orders to fulfilment), so only move what I approved."""


def _fulfil_order(arguments: Mapping[str, str]) -> str:
    where, store = _store_clause(arguments)
    order_id = arguments["order_id"]
    tracking = arguments.get("tracking_number")
    carrier = arguments.get("carrier_code")
    folder = arguments.get("folder")
    shipment = (
        f'tracking_number="{tracking}"'
        if tracking
        else 'tracking_number (ask me for it; use "n/a" only if I say there is none)'
    )
    if carrier:
        shipment += f', carrier_code="{carrier}"'
    destination = (
        f'folder="{folder}"'
        if folder
        else "folder=<the store's folder for shipped or closed orders; ask me if unclear>"
    )
    return f"""Please fulfil order {order_id} in {where}.

1. Call get_order(order_id="{order_id}"{store}) and check the order exists, what it contains,
   which folder it is in and whether order_shipments already has this tracking number. If it
   is not found, {order_id} may be the cart's order number: find the internal id with
   list_orders(source_id="{order_id}"{store}).
2. Add the shipment: add_shipment(order_id=<internal id>, {shipment}{store}).
   Skip this if the same tracking number is already on the order.
3. Call get_store({store.lstrip(", ")}) for the folder list, then move the order with
   move_orders(order_ids=[<internal id>], {destination}{store}). Tell me first that moving
   runs that folder's rules (which may e-mail the customer).
4. Report what you did: the shipment id, the tracking number and the order's new folder."""


PROMPTS: tuple[PromptDef, ...] = (
    PromptDef(
        name="triage_new_orders",
        title="Triage new orders",
        description="Review the orders in the New folder (or another) and propose where each "
        "should move, then move them once you confirm.",
        arguments=(
            STORE,
            PromptArgument("folder", "Folder to review (id or exact name); default New."),
            PromptArgument("limit", "How many orders to review, 1-100; default 20."),
        ),
        render=_triage_new_orders,
    ),
    PromptDef(
        name="fulfil_order",
        title="Fulfil an order",
        description="Add a shipment (tracking number) to an order and move it to the shipped "
        "or closed folder.",
        arguments=(
            PromptArgument(
                "order_id", "Order Desk's internal order id (or the cart's number).", True
            ),
            PromptArgument("tracking_number", "The parcel's tracking number."),
            PromptArgument("carrier_code", "Carrier, e.g. USPS, UPS, FedEx, DHL."),
            PromptArgument("folder", "Folder to move the order to afterwards (id or exact name)."),
            STORE,
        ),
        render=_fulfil_order,
    ),
)
_BY_NAME = {prompt.name: prompt for prompt in PROMPTS}


def list_prompts() -> list[dict[str, Any]]:
    return [prompt.to_mcp() for prompt in PROMPTS]


def get_prompt(name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The prompts/get result. Raises PromptNotFound or InvalidPromptArguments."""
    prompt = _BY_NAME.get(name)
    if prompt is None:
        known = ", ".join(_BY_NAME)
        raise PromptNotFound(f"No prompt named {echo(name)}; the prompts are: {known}.")
    given = dict(arguments or {})
    known_names = {argument.name for argument in prompt.arguments}
    unknown = sorted(set(given) - known_names)
    if unknown:
        raise InvalidPromptArguments(
            f"{name} has no argument(s) {echo_names(unknown)}; its arguments are: "
            f"{', '.join(argument.name for argument in prompt.arguments)}."
        )
    text_arguments: dict[str, str] = {}
    for key, value in given.items():
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidPromptArguments(f"{key}: prompt arguments are strings.")
        text = str(value).strip()
        if len(text) > 200 or any(char in text for char in '"\n\r'):
            raise InvalidPromptArguments(
                f"{key}: use a plain value under 200 characters without quotes or line breaks."
            )
        if text:
            text_arguments[key] = text
    missing = [
        arg.name for arg in prompt.arguments if arg.required and arg.name not in text_arguments
    ]
    if missing:
        raise InvalidPromptArguments(f"{name} needs {', '.join(missing)}.")
    return {
        "description": prompt.description,
        "messages": [
            {"role": "user", "content": {"type": "text", "text": prompt.render(text_arguments)}}
        ],
    }
