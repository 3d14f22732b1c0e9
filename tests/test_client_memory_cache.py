"""The cached-read fast path: URLs built without ``requests``' prepare, and the in-memory
front cache before the SQLite cache (real sandbox, real SQLite files)."""

from __future__ import annotations

import pytest
import requests
from hypothesis import example, given
from hypothesis import strategies as st

from orderdesk_mcp.orderdesk.urls import request_url

# --- URL building ---------------------------------------------------------------------------

BASE_URLS = st.from_regex(
    r"\Ahttps?://(?:[A-Za-z0-9.-]{1,20}|\[[0-9a-f:]{2,12}\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/-]{0,20})?\Z"
)
PATHS = st.sampled_from(
    ["/orders", "/orders/42", "/orders/7/order-items/9", "/inventory-items", "/store", "/test"]
)
PARAMS = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=6)


def prepared(url: str, params: dict[str, str]) -> str | None:
    return requests.Request("GET", url, params=params).prepare().url


@given(PARAMS)
@example({"a b": "c&d=e+f/g", "": "", "é": "日本", "x": ""})
@example({"~._-": "%41%7e", "q": "a%zz?#[]"})
def test_the_url_is_the_one_requests_would_send(params: dict[str, str]) -> None:
    base = "http://127.0.0.1:8123/api/v2"
    assert request_url(base, "/orders", params) == prepared(base + "/orders", params)


@given(BASE_URLS, PATHS, PARAMS)
@example("http://EXAMPLE.com:0080/api/../v2", "/orders/1", {"k": "v"})
@example("https://app.orderdesk.me", "/store", {})
def test_any_accepted_base_url_gives_the_same_url_as_requests(
    base: str, path: str, params: dict[str, str]
) -> None:
    try:
        expected = prepared(base + path, params)
    except (requests.RequestException, UnicodeError, ValueError) as refused:
        # requests refuses it: the builder falls back to requests and refuses it the same way
        with pytest.raises(type(refused)):
            request_url(base, path, params)
        return
    assert request_url(base, path, params) == expected


def test_a_lone_surrogate_is_refused_as_requests_refuses_it() -> None:
    base = "http://127.0.0.1:8123/api/v2"
    with pytest.raises(UnicodeEncodeError):
        prepared(base + "/orders", {"search": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        request_url(base, "/orders", {"search": "\ud800"})
