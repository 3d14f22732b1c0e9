"""/metrics: exposition that parses, counts that move, labels that stay bounded, access rules."""

from __future__ import annotations

import re
from pathlib import Path

import peewee
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from orderdesk_mcp.app import create_app
from orderdesk_mcp.backup import create_backup
from orderdesk_mcp.config import Secret, Settings
from orderdesk_mcp.metrics import OTHER, BoundedLabel, Metrics, get_metrics
from orderdesk_mcp.orderdesk.machinery import UpstreamCall
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault

ADMIN_TOKEN = "metrics-admin-token-0123456789"
OUTSIDE = {"REMOTE_ADDR": "198.51.100.23"}
ALERT_RULES = Path(__file__).resolve().parent.parent / "docs" / "alerts" / "orderdesk-mcp.rules.yml"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and label set."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(app: Flask, **kwargs: object) -> Samples:
    response = app.test_client().get("/metrics", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return parse_exposition(response.get_data(as_text=True))


def _app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return create_app(settings, Services(settings=settings, database=db, vault=vault))


@pytest.fixture
def app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return _app(settings, db, vault)


def upstream(**changes: object) -> UpstreamCall:
    fields: dict[str, object] = {
        "store_id": "100001",
        "method": "GET",
        "endpoint": "/orders/{id}",
        "status": 200,
        "duration_ms": 40.0,
        "cache_hit": False,
        "retries": 0,
        "tokens_remaining": 19,
        "coalesced": False,
        "rate_limited_waits": 0,
    }
    fields.update(changes)
    return UpstreamCall(**fields)  # type: ignore[arg-type]


def test_exposition_parses_and_counts_what_the_parts_report(app: Flask, settings: Settings) -> None:
    create_backup(settings)
    with app.app_context():
        metrics = get_metrics()
        metrics.record_tool_call("get_order", "ok", 0.02)
        metrics.record_tool_call("get_order", "upstream_error", 0.5)
        metrics.record_mcp_request("tools/call")
        metrics.record_auth_failure("invalid")
        metrics.record_rate_limited("api_key")
        metrics.observe_upstream(upstream())
        metrics.observe_upstream(upstream(cache_hit=True))
        metrics.observe_upstream(upstream(coalesced=True))
        metrics.observe_upstream(
            upstream(method="PUT", endpoint="/orders/{id}", status=429, retries=2,
                     rate_limited_waits=1)
        )  # fmt: skip
        metrics.observe_upstream(upstream(status=None, tokens_remaining=None))
    app.test_client().get("/health")
    samples = scrape(app)

    def v(name: str, **labels: str) -> float:
        return value(samples, name, **labels)

    assert v("orderdesk_mcp_tool_calls_total", tool="get_order", outcome="ok") == 1
    assert v("orderdesk_mcp_tool_calls_total", tool="get_order", outcome="upstream_error") == 1
    assert v("orderdesk_mcp_tool_call_duration_seconds_count", tool="get_order") == 2
    assert v("orderdesk_mcp_mcp_requests_total", method="tools/call") == 1
    assert v("orderdesk_mcp_auth_failures_total", reason="invalid") == 1
    assert v("orderdesk_mcp_rate_limited_total", kind="api_key") == 1
    get = {"method": "GET", "endpoint": "/orders/{id}"}
    assert v("orderdesk_mcp_upstream_requests_total", **get, status="200") == 1
    assert v("orderdesk_mcp_upstream_requests_total", **get, status="none") == 1
    assert v("orderdesk_mcp_upstream_requests_total", method="PUT", endpoint="/orders/{id}",
             status="429") == 1  # fmt: skip
    assert v("orderdesk_mcp_upstream_request_duration_seconds_count", **get) == 2
    assert v("orderdesk_mcp_upstream_cache_lookups_total", result="hit") == 1
    assert v("orderdesk_mcp_upstream_cache_lookups_total", result="miss") == 3
    assert v("orderdesk_mcp_upstream_coalesced_total", endpoint="/orders/{id}") == 1
    assert v("orderdesk_mcp_upstream_retries_total", endpoint="/orders/{id}") == 2
    assert v("orderdesk_mcp_upstream_rate_limited_total", endpoint="/orders/{id}") == 1
    assert v("orderdesk_mcp_http_requests_total", route="/health", method="GET", status="200") == 1
    assert v("orderdesk_mcp_active_sessions") == 0
    assert v("orderdesk_mcp_last_backup_timestamp_seconds") > 1.7e9
    assert v("orderdesk_mcp_start_time_seconds") > 1.7e9
    assert any(name == "orderdesk_mcp_build_info" for name, _ in samples)


def test_labels_are_templates_and_bounded(app: Flask) -> None:
    client = app.test_client()
    for number in range(5):
        client.get(f"/no/such/path/{number}")
    with app.app_context():
        for number in range(200):
            get_metrics().record_mcp_request(f"made/up/{number}")
        get_metrics().record_mcp_request("bad label \n with spaces")
    samples = scrape(app)
    routes = {dict(labels).get("route") for name, labels in samples if "http_requests" in name}
    assert "unmatched" in routes
    assert not any(route and route.startswith("/no/such") for route in routes)
    methods = {
        dict(labels)["method"] for name, labels in samples if name.startswith("orderdesk_mcp_mcp_")
    }
    assert len(methods) <= 65
    assert OTHER in methods


def test_bounded_label_caps_distinct_values() -> None:
    label = BoundedLabel(limit=3)
    assert [label(v) for v in ("a", "b", "a", "c", "d", "")] == ["a", "b", "a", "c", OTHER, OTHER]


def test_each_app_has_its_own_registry(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    first, second = _app(settings, db, vault), _app(settings, db, vault)
    with first.app_context():
        get_metrics().record_tool_call("list_orders", "ok", 0.1)
    assert value(scrape(first), "orderdesk_mcp_tool_calls_total", tool="list_orders", outcome="ok")
    assert not value(
        scrape(second), "orderdesk_mcp_tool_calls_total", tool="list_orders", outcome="ok"
    )
    assert isinstance(get_metrics(), Metrics)  # outside an app: the process-wide one


def test_loopback_mode_serves_local_scrapers_and_the_token(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = _app(settings.replace(admin_token=Secret(ADMIN_TOKEN)), db, vault)
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    outside = client.get("/metrics", environ_base=OUTSIDE)
    assert outside.status_code == 401
    assert "Bearer" in outside.get_json()["error"]
    with_token = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert with_token.status_code == 200
    wrong = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401


def test_token_mode_refuses_even_loopback_without_the_token(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    tokened = settings.replace(metrics_access="token", admin_token=Secret(ADMIN_TOKEN))
    client = _app(tokened, db, vault).test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 200
    untokened = _app(settings.replace(metrics_access="token"), db, vault).test_client()
    refused = untokened.get("/metrics")
    assert refused.status_code == 403
    assert "ORDERDESK_MCP_ADMIN_TOKEN" in refused.get_json()["error"]


def test_open_mode_serves_anyone(settings: Settings, db: peewee.Database, vault: Vault) -> None:
    client = _app(settings.replace(metrics_access="open"), db, vault).test_client()
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200


def test_alert_rules_use_only_metrics_that_exist(app: Flask, settings: Settings) -> None:
    create_backup(settings)  # the backup gauge is absent until a backup exists
    text = app.test_client().get("/metrics").get_data(as_text=True)
    families = {family.name for family in text_string_to_metric_families(text)}
    rules = ALERT_RULES.read_text(encoding="utf-8")
    used = set(re.findall(r"orderdesk_mcp_[a-z_]+", rules))
    assert used, "the alert rules reference no orderdesk-mcp metric"
    unknown = {
        name for name in used if re.sub(r"_(bucket|count|sum|total)$", "", name) not in families
    }
    assert not unknown, f"alert rules use metrics the server does not export: {unknown}"
    assert rules.count("alert:") >= 5
