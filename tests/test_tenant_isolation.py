"""Isolation: tenant B, signed in, opens every page and submits every form of tenant A's (A's
store aliases and ids, store row ids, key ids, grant ids, activity filters in URLs and fields)
and gets 404 or its own view, never A's record; A's rows are the same afterwards.

The pages and forms are found by crawling A's signed-in pages, so a new one is swept too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from tests.tenant_helpers import (
    Crawl,
    FoundForm,
    Merchant,
    crawl,
    csrf_of,
    fill,
    make_merchant,
    snapshot,
    tenant_app,
    vault_of,
)


@dataclass
class TwoTenants:
    app: Flask
    a: Merchant
    b: Merchant


@pytest.fixture
def two(data_dir: Path) -> Iterator[TwoTenants]:
    with tenant_app(data_dir) as app:
        vault = vault_of(app)
        # Distinct aliases and Order Desk ids, so any of A's strings on B's pages is a leak.
        a = make_merchant(
            "acme", vault, stores=[("300001", "acme-main"), ("300002", "acme-spare")], base_url=None
        )
        # Two stores, so B's pages carry every kind of form A's do (e.g. "make default").
        b = make_merchant(
            "bolt", vault, stores=[("400001", "bolt-shop"), ("400002", "bolt-spare")], base_url=None
        )
        yield TwoTenants(app, a, b)


def carries(text: str, merchant: Merchant, other: Merchant) -> bool:
    """Does a URL or a form value name one of `merchant`'s records?

    By a marker (alias, Order Desk id, key or grant id), or by a database id where the pages
    put one: the segment after its collection in a path (/tenant/stores/<id>/...). Database
    ids are per table, so a bare number names a record only when it is none of `other`'s.
    """
    text = unquote(text)
    if any(marker in text for marker in merchant.markers()):
        return True
    segments = urlsplit(text).path.split("/")
    for collection, row_id in pairwise(segments):
        if row_id in merchant.row_ids.get(collection, set()):
            return True
    mine = set().union(*merchant.row_ids.values())
    theirs = set().union(*other.row_ids.values())
    return text in mine - theirs


def form_carries(found: FoundForm, merchant: Merchant, other: Merchant) -> bool:
    values = [v for n, v in found.form.values.items() if n != "csrf_token"]
    values += [v for n, v in found.form.buttons]
    return any(carries(text, merchant, other) for text in [found.action, *values])


def leaks(html: str, merchant: Merchant) -> list[str]:
    return sorted(marker for marker in merchant.markers() if marker in html)


@pytest.fixture
def a_crawl(two: TwoTenants) -> Crawl:
    found = crawl(two.a.browser(two.app))
    # The sweep means something only if A's pages show A's records and carry its ids.
    every_page = " ".join(found.pages.values())
    assert set(two.a.aliases) <= set(leaks(every_page, two.a)), "the stores page lists A's stores"
    assert any(form_carries(f, two.a, two.b) for f in found.post_forms()), (
        "no form on A's pages names one of A's records: "
        + "; ".join(f.describe() for f in found.forms)
    )
    return found


def test_b_opening_a_pages_gets_404_or_its_own_view(two: TwoTenants, a_crawl: Crawl) -> None:
    b = two.b.browser(two.app)
    before = snapshot(two.a.tenant)
    urls = a_crawl.get_urls()
    assert {"/tenant/stores", "/tenant/keys", "/tenant/apps", "/tenant/activity"} <= {
        url.split("?")[0] for url in urls
    }, urls
    for url in urls:
        reply = b.get(url)
        if carries(url, two.a, two.b):
            assert reply.status_code == 404, f"B opened {url}: {reply.status_code}"
        else:
            assert reply.status_code == 200, f"B opened {url}: {reply.status_code}"
        assert leaks(reply.text, two.a) == [], f"B saw A's records at {url}"
        assert "Traceback" not in reply.text
    assert snapshot(two.a.tenant) == before
    assert_still_signed_in(b, two.b)


def test_activity_filters_with_a_values_show_b_its_own_rows_only(
    two: TwoTenants, a_crawl: Crawl
) -> None:
    """The activity filters (`action`, `outcome`, and `page`), set to A's values: B sees only
    its own rows (B has the same tools in its own trail, so a filter that hid everything
    would prove nothing)."""
    b = two.b.browser(two.app)
    (filters,) = [f for f in a_crawl.forms if f.action.startswith("/tenant/activity")]
    assert {"action", "outcome"} <= filters.form.names(), filters.describe()
    # Every value A's own filter form offers (A's tools and results), on page 1 and 2.
    offered = [
        option
        for option in re.findall(r'<option value="([^"]*)"', a_crawl.pages["/tenant/activity"])
        if option
    ]
    tools = ("tools/call list_orders", "tools/call get_order", "tools/call add_shipment")
    assert {*tools, "ok", "not_found"} <= set(offered), offered
    for action in tools:
        for outcome in ("", "ok", "not_found"):
            for page in ("1", "2"):
                query = "/tenant/activity?" + urlencode(
                    {"action": action, "outcome": outcome, "page": page}
                )
                reply = b.get(query)
                assert reply.status_code == 200, f"{query}: {reply.status_code}"
                assert leaks(reply.text, two.a) == [], f"B saw A's activity at {query}"
                assert "acme-order-1" not in reply.text
        reply = b.get("/tenant/activity?" + urlencode({"action": action}))
        assert "bolt-shop" in reply.text, f"B's own {action} row is listed"


def test_b_submitting_a_forms_gets_404_and_changes_nothing(two: TwoTenants, a_crawl: Crawl) -> None:
    b = two.b.browser(two.app)
    b_token = csrf_of(b.get("/tenant/stores").text)
    before = snapshot(two.a.tenant)
    swept = []
    for found in a_crawl.post_forms():
        if not form_carries(found, two.a, two.b):
            continue  # names none of A's records (add a store, create a key): B's own account
        # With B's own valid token: only the ids are A's.
        reply = b.post(found.action, data=MultiDict(fill(found, b_token)))
        assert reply.status_code == 404, f"B submitted {found.describe()}: {reply.status_code}"
        assert leaks(reply.text, two.a) == [], f"B saw A's records from {found.describe()}"
        assert snapshot(two.a.tenant) == before, f"{found.describe()} changed A's rows"
        swept.append(found.describe())
    assert swept
    assert_still_signed_in(b, two.b)


def test_b_naming_a_records_in_its_own_forms_gets_404(two: TwoTenants, a_crawl: Crawl) -> None:
    """B's own forms with each of A's ids put in place of B's (a hand-edited form or URL)."""
    b = two.b.browser(two.app)
    b_crawl = crawl(b)
    before = snapshot(two.a.tenant)
    swaps = {
        **dict.fromkeys(two.b.aliases, two.a.aliases[0]),
        **dict.fromkeys(two.b.store_ids, two.a.store_ids[0]),
        **dict.fromkeys(two.b.key_public_ids, two.a.key_public_ids[0]),
        **dict.fromkeys(two.b.grant_public_ids, two.a.grant_public_ids[0]),
    }

    def swap_path(path: str) -> str:
        segments = path.split("/")
        swapped = [swaps.get(part, part) for part in segments]
        for at, (collection, part) in enumerate(pairwise(segments)):
            if part in two.b.row_ids.get(collection, set()):
                swapped[at + 1] = min(two.a.row_ids[collection])  # A's row of that table
        return "/".join(swapped)

    tried = []
    for found in b_crawl.post_forms():
        fields = fill(found, csrf_of(b_crawl.pages[found.page]))
        edited = [(name, swaps.get(value, value)) for name, value in fields]
        action = swap_path(found.action)
        if edited == fields and action == found.action:
            continue  # nothing of B's in it to swap (e.g. sign out everywhere)
        reply = b.post(action, data=MultiDict(edited))
        assert reply.status_code == 404, f"{found.describe()} with A's ids: {reply.status_code}"
        assert leaks(reply.text, two.a) == []
        assert snapshot(two.a.tenant) == before, f"{found.describe()} with A's ids changed A"
        tried.append(action)
    # Every kind of form that names a record was tried with A's: stores (key, default,
    # remove), keys (revoke, and the store ticked on the create form), apps (disconnect).
    for path in ("/key", "/default", "/remove", "/revoke", "/tenant/keys"):
        assert any(action.endswith(path) for action in tried), (path, tried)
    assert any(action.startswith("/tenant/apps/") for action in tried), tried
    assert_still_signed_in(b, two.b)


def assert_still_signed_in(client: FlaskClient, merchant: Merchant) -> None:
    """The 404s above were the scoping's, not a lost session's."""
    reply = client.get("/tenant/stores")
    assert reply.status_code == 200
    assert merchant.aliases[0] in reply.text
