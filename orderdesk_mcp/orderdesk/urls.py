"""The URL of a GET, exactly as ``requests`` would send it, without preparing a request.

Cache keys are made from this string, so it must equal
``requests.Request("GET", base_url + path, params=params).prepare().url`` character for
character. ``requests`` builds it as ``requote_uri(address + "?" + urlencode(utf-8 pairs))``;
``urlencode`` leaves only unreserved characters, ``%XX``, ``+``, ``=`` and ``&``, which
``requote_uri`` keeps as they are. The address is the only part ``requests`` may rewrite (host
case, default path, dot segments, port spelling), so it is used as is only when ``requests``
leaves that base URL alone; otherwise the request is prepared as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlencode

import requests

# Paths the client builds: /orders, /orders/42/order-items/7, /inventory-items, ...
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9_-]+)+", re.ASCII)


def request_url(base_url: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """``base_url + path`` with ``params`` (in their order) as ``requests`` encodes them."""
    if not (_PLAIN_PATH.fullmatch(path) and _prepares_to_itself(base_url)):
        prepared = requests.Request("GET", base_url + path, params=dict(params or {})).prepare()
        return prepared.url or base_url + path
    url = base_url + path
    if params:
        # requests encodes keys and values to UTF-8 (strictly: a lone surrogate raises) and
        # quotes them with quote_plus; urlencode does the same with str.
        url += "?" + urlencode(list(params.items()))
    return url


@lru_cache(maxsize=256)
def _prepares_to_itself(base_url: str) -> bool:
    """True when ``requests`` sends ``base_url`` followed by a plain path unchanged."""
    probe = base_url + "/probe"
    try:
        return requests.Request("GET", probe).prepare().url == probe
    except requests.RequestException:
        return False
