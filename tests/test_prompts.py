"""MCP prompts and completion: arguments, rendered text naming our tools, suggestions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orderdesk_mcp.mcp.completion import CARRIER_CODES, complete
from orderdesk_mcp.mcp.prompts import (
    InvalidPromptArguments,
    PromptNotFound,
    get_prompt,
    list_prompts,
)
from orderdesk_mcp.mcp.registry import StaticStoreResolver, find_tool
from orderdesk_mcp.orderdesk import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox
from tests.test_tools_sandbox import FAST_RETRY, MAIN, make_resolver, start_test_sandbox

NO_STORES = StaticStoreResolver([])


@pytest.fixture
def sandbox_and_resolver(tmp_path: Path) -> Iterator[tuple[RunningSandbox, StaticStoreResolver]]:
    with start_test_sandbox() as running:
        machinery = UpstreamMachinery(tmp_path / "http-cache.sqlite", retry=FAST_RETRY)
        yield running, make_resolver(running, machinery)
        machinery.close()


def text_of(name: str, arguments: dict[str, Any] | None) -> str:
    result = get_prompt(name, arguments)
    [message] = result["messages"]
    assert message["role"] == "user"
    assert message["content"]["type"] == "text"
    assert result["description"]
    text: str = message["content"]["text"]
    return text


def tool_calls_in(text: str) -> set[str]:
    return {word.split("(")[0] for word in text.split() if "(" in word and word[0].isalpha()}


def test_prompts_are_listed_with_their_arguments() -> None:
    listed = {prompt["name"]: prompt for prompt in list_prompts()}
    assert set(listed) >= {"triage_new_orders", "fulfil_order"}
    for prompt in listed.values():
        assert prompt["title"]
        assert prompt["description"]
    fulfil = {arg["name"]: arg["required"] for arg in listed["fulfil_order"]["arguments"]}
    assert fulfil == {
        "order_id": True,
        "tracking_number": False,
        "carrier_code": False,
        "folder": False,
        "store": False,
    }
    triage = {arg["name"] for arg in listed["triage_new_orders"]["arguments"]}
    assert triage == {"store", "folder", "limit"}


def test_triage_new_orders_uses_our_tool_names() -> None:
    text = text_of("triage_new_orders", {"store": "eu", "limit": "5"})
    assert 'list_orders(folder="New", limit=5' in text
    assert 'store="eu"' in text
    assert "move_orders(" in text
    assert "Do not move anything yet" in text
    for name in tool_calls_in(text):
        assert find_tool(name) is not None, name
    default = text_of("triage_new_orders", None)
    assert "limit=20" in default
    assert "store=" not in default
    assert 'folder="Prepared"' in text_of("triage_new_orders", {"folder": "Prepared"})


def test_fulfil_order_uses_the_arguments() -> None:
    text = text_of(
        "fulfil_order",
        {
            "order_id": "1000123",
            "tracking_number": "1Z999",
            "carrier_code": "UPS",
            "folder": "Closed",
        },
    )
    assert 'get_order(order_id="1000123")' in text
    assert 'tracking_number="1Z999", carrier_code="UPS"' in text
    assert 'move_orders(order_ids=[<internal id>], folder="Closed")' in text
    assert 'list_orders(source_id="1000123")' in text
    for name in tool_calls_in(text):
        assert find_tool(name) is not None, name
    asks = text_of("fulfil_order", {"order_id": 7})
    assert "ask me for it" in asks


@pytest.mark.parametrize(
    ("name", "arguments", "error", "says"),
    [
        ("nope", {}, PromptNotFound, "triage_new_orders, fulfil_order"),
        ("fulfil_order", {}, InvalidPromptArguments, "needs order_id"),
        ("fulfil_order", {"order_id": "  "}, InvalidPromptArguments, "needs order_id"),
        ("fulfil_order", {"order_id": "1", "colour": "red"}, InvalidPromptArguments, "colour"),
        ("triage_new_orders", {"limit": "500"}, InvalidPromptArguments, "1 to 100"),
        ("triage_new_orders", {"limit": "ten"}, InvalidPromptArguments, "1 to 100"),
        ("triage_new_orders", {"store": ["a"]}, InvalidPromptArguments, "strings"),
        ("fulfil_order", {"order_id": 'x" ignore'}, InvalidPromptArguments, "quotes"),
    ],
)
def test_bad_prompt_requests(name: str, arguments: dict[str, Any], error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        get_prompt(name, arguments)


def values(result: dict[str, Any]) -> list[str]:
    completion = result["completion"]
    assert completion["total"] == len(completion["values"])
    assert completion["hasMore"] is False
    found: list[str] = completion["values"]
    return found


def test_store_and_carrier_completion(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    _running, resolver = sandbox_and_resolver
    prompt = {"type": "ref/prompt", "name": "fulfil_order"}
    everything = values(complete(prompt, {"name": "store", "value": ""}, None, resolver))
    assert everything == ["main", "empty", "100001", "100002"]
    assert values(complete(prompt, {"name": "store", "value": "E"}, None, resolver)) == ["empty"]
    template = {"type": "ref/resource", "uri": "orderdesk://{store}/orders/{order_id}"}
    assert values(complete(template, {"name": "store", "value": "10000"}, None, resolver)) == [
        "100001",
        "100002",
    ]
    assert values(complete(prompt, {"name": "carrier_code", "value": "u"}, None, resolver)) == [
        "USPS",
        "UPS",
    ]
    assert len(
        values(complete(prompt, {"name": "carrier_code", "value": ""}, None, NO_STORES))
    ) == len(CARRIER_CODES)
    assert values(complete(template, {"name": "order_id", "value": "1"}, None, resolver)) == []
    assert (
        values(complete({"type": "ref/tool"}, {"name": "store", "value": ""}, None, resolver)) == []
    )


def test_folder_completion_reads_the_chosen_store(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    _running, resolver = sandbox_and_resolver
    prompt = {"type": "ref/prompt", "name": "triage_new_orders"}
    folders = values(complete(prompt, {"name": "folder", "value": ""}, None, resolver))
    assert folders == ["New", "Prepared", "Closed", "Canceled"]
    assert values(
        complete(prompt, {"name": "folder", "value": "c"}, {"store": "empty"}, resolver)
    ) == [
        "Closed",
        "Canceled",
    ]
    unknown_store = {"store": "elsewhere"}
    assert values(complete(prompt, {"name": "folder", "value": ""}, unknown_store, resolver)) == []


def test_folder_completion_is_empty_when_order_desk_fails(
    sandbox_and_resolver: tuple[RunningSandbox, StaticStoreResolver],
) -> None:
    running, resolver = sandbox_and_resolver
    running.set_faults(MAIN.store_id, error_rate=1.0)
    prompt = {"type": "ref/prompt", "name": "fulfil_order"}
    assert values(complete(prompt, {"name": "folder", "value": ""}, None, resolver)) == []
