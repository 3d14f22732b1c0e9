"""Tenant API keys: issue, verify, revoke; constant cost whatever the number of tenants."""

from __future__ import annotations

import statistics
import time

import peewee
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk_mcp.auth import AuthError, issue_key, parse_token, revoke_key, verify_token
from orderdesk_mcp.db.models import ApiKey, Tenant
from orderdesk_mcp.tenancy import create_tenant, disable_tenant
from orderdesk_mcp.vault import Vault


def _tenant(name: str = "acme") -> Tenant:
    return create_tenant(name, Vault.new_tenant_salt())


def test_issue_then_verify(db: peewee.Database) -> None:
    issued = issue_key(_tenant(), label="laptop")
    key = verify_token(issued.token)
    assert key is not None
    assert (key.tenant_name, key.public_id, key.read_only) == ("acme", issued.public_id, False)
    assert issued.token.startswith(f"odmcp_{issued.public_id}_")


def test_only_a_hash_of_the_secret_is_stored(db: peewee.Database) -> None:
    issued = issue_key(_tenant())
    secret = issued.token.split("_", 2)[2]
    row = ApiKey.get(ApiKey.public_id == issued.public_id)
    assert secret not in row.secret_hash
    assert len(row.secret_hash) == 64


def test_read_only_and_toolsets(db: peewee.Database) -> None:
    issued = issue_key(_tenant(), read_only=True, toolsets="orders,store")
    key = verify_token(issued.token)
    assert key is not None
    assert key.read_only
    assert key.toolsets == frozenset({"orders", "store"})
    with pytest.raises(AuthError, match="unknown toolset 'payments'"):
        issue_key(Tenant.get(), toolsets="orders,payments")


def test_revoked_key_is_refused(db: peewee.Database) -> None:
    issued = issue_key(_tenant())
    revoke_key(issued.public_id)
    assert verify_token(issued.token) is None
    with pytest.raises(AuthError, match="key list"):
        revoke_key("000000000000")


def test_disabled_tenant_is_refused(db: peewee.Database) -> None:
    issued = issue_key(_tenant())
    disable_tenant("acme")
    assert verify_token(issued.token) is None


def test_wrong_secret_for_a_real_public_id_is_refused(db: peewee.Database) -> None:
    issued = issue_key(_tenant())
    forged = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    assert verify_token(forged) is None


@pytest.mark.parametrize(
    "token",
    ["", "odmcp_", "Bearer x", "odmcp_zzzzzzzzzzzz_" + "a" * 43, "odmcp_0123456789ab_short"],
)
def test_malformed_tokens_are_refused(db: peewee.Database, token: str) -> None:
    assert verify_token(token) is None


@given(st.text(max_size=120))
@settings(max_examples=200)
def test_parse_token_accepts_only_the_exact_shape(text: str) -> None:
    parsed = parse_token(text)
    if parsed is not None:
        assert text == f"odmcp_{parsed[0]}_{parsed[1]}"


def _median_verify_seconds(token: str, rounds: int = 300) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert verify_token(token) is not None
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@pytest.mark.sqlite_only  # reads SQLite's EXPLAIN QUERY PLAN
def test_lookup_cost_does_not_grow_with_tenants(db: peewee.Database) -> None:
    issued = issue_key(_tenant("first"))
    verify_token(issued.token)  # warm caches and last_used
    alone = _median_verify_seconds(issued.token)

    with db.atomic():
        for index in range(2000):
            tenant = _tenant(f"tenant-{index:04d}")
            issue_key(tenant)
    crowded = _median_verify_seconds(issued.token)

    # A ratio measured in one run; an index lookup stays flat, a scan would grow ~2000x.
    assert crowded / alone < 3.0
    plan = " ".join(
        str(row)
        for row in db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM api_key WHERE public_id = ?", ("x",)
        ).fetchall()
    )
    assert "USING INDEX" in plan
