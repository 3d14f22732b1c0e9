"""The sandbox's rate limit (driven by a manual clock), fault injection and admin endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from orderdesk_mcp.sandbox import (
    FaultSettings,
    ManualClock,
    RunningSandbox,
    SandboxStoreSpec,
    build_state,
    create_sandbox_app,
    max_served_in_window,
    max_window_excess,
    start_sandbox,
)
from orderdesk_mcp.sandbox.admin import is_loopback
from orderdesk_mcp.sandbox.rate_limit import TokenBucket

STORE = "200001"
OTHER = "200002"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked(clock: ManualClock) -> Iterator[RunningSandbox]:
    specs = [
        SandboxStoreSpec(STORE, "sk_test_limits_a", seed="empty"),
        SandboxStoreSpec(OTHER, "sk_test_limits_b", seed="empty"),
    ]
    with start_sandbox(specs, clock=clock) as running:
        yield running


def get(sb: RunningSandbox, store: str = STORE, path: str = "/test") -> requests.Response:
    return requests.get(f"{sb.base_url}{path}", headers=sb.headers(store), timeout=10)


def test_bucket_serves_exactly_20_then_429_with_retry_after(
    clocked: RunningSandbox, clock: ManualClock
) -> None:
    remaining = [int(get(clocked).headers["X-Tokens-Remaining"]) for _ in range(20)]
    assert remaining == list(range(19, -1, -1))
    refused = get(clocked)
    assert refused.status_code == 429
    assert refused.json() == {
        "status": "error",
        "message": "Too Many Requests",
        "execution_time": refused.json()["execution_time"],
    }
    assert refused.headers["X-Retry-After"] == "1"
    assert refused.headers["X-Tokens-Remaining"] == "0"
    stats = clocked.stats(STORE)
    assert stats["served"] == 20
    assert stats["rejected_429"] == 1
    # Another store has its own bucket.
    assert get(clocked, OTHER).status_code == 200


def test_bucket_refills_three_tokens_per_second(
    clocked: RunningSandbox, clock: ManualClock
) -> None:
    for _ in range(20):
        get(clocked)
    clock.advance(1.0)
    assert [get(clocked).status_code for _ in range(4)] == [200, 200, 200, 429]
    clock.advance(0.2)  # 0.6 tokens: still short of one
    refused = get(clocked)
    assert refused.status_code == 429
    assert refused.headers["X-Retry-After"] == "1"
    clock.advance(0.2)
    assert get(clocked).status_code == 200
    clock.advance(100)
    assert get(clocked).headers["X-Tokens-Remaining"] == "19"


def test_rejected_requests_cost_no_token(clocked: RunningSandbox, clock: ManualClock) -> None:
    for _ in range(20):
        get(clocked)
    for _ in range(5):
        assert get(clocked).status_code == 429
    clock.advance(1 / 3)
    assert get(clocked).status_code == 200


def test_served_log_never_beats_the_documented_limit(
    clocked: RunningSandbox, clock: ManualClock
) -> None:
    for step in range(120):
        get(clocked)
        clock.advance(0.1 if step % 3 else 0.05)
    served_at = clocked.stats(STORE)["served_at"]
    assert max_window_excess(served_at) <= 0
    assert max_served_in_window(served_at, 0.0) == 1
    assert clocked.stats(STORE)["by_endpoint"] == {"GET /test": len(served_at)}


def test_window_helpers_flag_a_burst_over_the_limit() -> None:
    burst = [0.0] * 21
    assert max_window_excess(burst) == 1
    assert max_served_in_window(burst, 1.0) == 21
    steady = [i / 3 for i in range(60)]
    assert max_window_excess(steady) <= -19 + 1e-9
    assert max_window_excess([]) <= 0
    # 20 at once, then one more after a third of a second: exactly at the limit.
    assert max_window_excess([0.0] * 20 + [1 / 3]) == pytest.approx(0.0)


def test_token_bucket_retry_after_grows_with_the_deficit() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, capacity=2, refill_per_second=0.5)
    assert bucket.take().served
    assert bucket.take().served
    decision = bucket.take()
    assert not decision.served
    assert decision.retry_after_s == 2


def test_forced_429s_then_recovery(clocked: RunningSandbox) -> None:
    clocked.set_faults(STORE, force_429=2)
    codes = [get(clocked).status_code for _ in range(3)]
    assert codes == [429, 429, 200]
    assert get(clocked, OTHER).status_code == 200
    stats = clocked.stats(STORE)
    assert stats["rejected_429"] == 2
    assert stats["served"] == 1


def test_server_error_share_is_seeded_and_repeatable(clocked: RunningSandbox) -> None:
    def run() -> list[int]:
        clocked.set_faults(STORE, error_rate=0.5)
        return [get(clocked).status_code for _ in range(12)]

    first = run()
    assert set(first) == {200, 500}
    assert run() == first
    clocked.set_faults(STORE, error_rate=1.0)
    failed = get(clocked)
    assert failed.headers["Content-Type"].startswith("application/json")
    assert failed.json()["status"] == "error"


def test_dropped_connection_is_a_connection_error(clocked: RunningSandbox) -> None:
    clocked.set_faults(STORE, drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        get(clocked)
    clocked.set_faults(STORE)
    assert get(clocked).status_code == 200
    assert clocked.stats(STORE)["served"] == 1


def test_latency_is_added(clocked: RunningSandbox) -> None:
    clocked.set_faults(STORE, latency_ms=150)
    slow = get(clocked).elapsed.total_seconds()
    clocked.set_faults(STORE)
    fast = get(clocked).elapsed.total_seconds()
    assert slow >= 0.15
    assert slow > fast


def test_faults_set_at_start_apply_to_every_store() -> None:
    specs = [
        SandboxStoreSpec("300001", "sk_a", "empty"),
        SandboxStoreSpec("300002", "sk_b", "empty"),
    ]
    with start_sandbox(specs, faults=FaultSettings(error_rate=1.0)) as sb:
        assert get(sb, "300001").status_code == 500
        assert get(sb, "300002").status_code == 500


def test_admin_endpoint_sets_faults_reads_stats_and_resets(clocked: RunningSandbox) -> None:
    response = requests.post(
        f"{clocked.admin_url}/faults", json={"store_id": STORE, "force_429": 1}, timeout=10
    )
    assert response.json()["faults"]["force_429"] == 1
    assert get(clocked).status_code == 429
    assert get(clocked).status_code == 200
    stats = requests.get(f"{clocked.admin_url}/stats", params={"store_id": STORE}, timeout=10)
    assert stats.json()["stats"]["served"] == 1
    assert stats.json()["stats"]["rejected_429"] == 1
    every = requests.get(f"{clocked.admin_url}/stats", timeout=10).json()["stores"]
    assert set(every) == {STORE, OTHER}
    requests.post(f"{clocked.admin_url}/faults", json={"error_rate": 1.0}, timeout=10)
    assert get(clocked, OTHER).status_code == 500
    reset = requests.post(f"{clocked.admin_url}/reset", timeout=10)
    assert reset.json()["status"] == "success"
    assert get(clocked, OTHER).status_code == 200
    assert clocked.stats(STORE)["served"] == 0


def test_admin_endpoint_rejects_bad_settings(clocked: RunningSandbox) -> None:
    bad = requests.post(f"{clocked.admin_url}/faults", json={"error_rate": 2}, timeout=10)
    assert bad.status_code == 400
    assert "error_rate" in bad.json()["message"]
    typo = requests.post(f"{clocked.admin_url}/faults", json={"drop": 1}, timeout=10)
    assert "unknown fault setting" in typo.json()["message"]
    missing = requests.get(f"{clocked.admin_url}/stats", params={"store_id": "9"}, timeout=10)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.168.1.2", False),
        ("2001:db8::1", False),
        ("::ffff:10.0.0.1", False),
        ("localhost", False),
        ("", False),
        (None, False),
    ],
)
def test_admin_loopback_check(address: str | None, allowed: bool) -> None:
    assert is_loopback(address) is allowed


def test_admin_refuses_non_loopback_clients() -> None:
    app = create_sandbox_app(build_state([SandboxStoreSpec("400001", "sk_x", "empty")]))
    client = app.test_client()
    refused = client.get("/_sandbox/stats", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert refused.status_code == 403
    assert refused.get_json()["status"] == "error"
    allowed = client.get("/_sandbox/stats", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert allowed.status_code == 200
