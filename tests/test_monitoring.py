"""Monitoring: job outcomes and readiness on /metrics, the alert rules (promtool check and unit
tests) and the Grafana dashboard, whose queries may name only metrics a real server exports."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import peewee
import pytest
import requests
import yaml
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from orderdesk_mcp.app import create_app
from orderdesk_mcp.backup import create_backup
from orderdesk_mcp.config import Settings
from orderdesk_mcp.jobs import record_job
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.services import Services
from orderdesk_mcp.vault import Vault
from tests.server_group import ServerGroup, call_tool, open_session, run_cli
from tests.test_metrics import Samples, parse_exposition, scrape, value

ROOT = Path(__file__).resolve().parent.parent
ALERTS_DIR = ROOT / "docs" / "alerts"
RULES = ALERTS_DIR / "orderdesk-mcp.rules.yml"
RULE_TESTS = ALERTS_DIR / "orderdesk-mcp.tests.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "orderdesk-mcp.json"
METRIC_NAME = re.compile(r"\borderdesk_mcp_[a-z_]+")
# Grafana's variables, as a query would see them once Grafana filled them in.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": "orderdesk-mcp", "$instance": ".+"}


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is required (Debian package prometheus; `make system-deps`)"
    return found


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _dashboard_queries() -> list[str]:
    dashboard = _dashboard()
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    queries += [
        variable["definition"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]
    return queries


def _rule_expressions() -> dict[str, str]:
    return {
        rule["alert"]: str(rule["expr"])
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }


def _ago(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(**delta)


def _app(settings: Settings, db: peewee.Database, vault: Vault) -> Flask:
    return create_app(settings, Services(settings=settings, database=db, vault=vault))


# --- job outcomes and readiness on /metrics ---------------------------------------------


def test_job_outcomes_appear_on_metrics_after_recorded_runs(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = _app(settings, db, vault)
    assert value(scrape(app), "orderdesk_mcp_job_last_run_ok", kind="backup") == 0.0
    record_job(db, "backup", ok=True, started=_ago(hours=5), size_bytes=12345)
    record_job(db, "upload", ok=True, started=_ago(hours=5))
    record_job(db, "upload", ok=False, started=_ago(minutes=1), detail="bucket unreachable")

    samples = scrape(app)

    def v(name: str, **labels: str) -> float:
        return value(samples, name, **labels)

    now = dt.datetime.now(dt.UTC).timestamp()
    assert v("orderdesk_mcp_job_last_run_ok", kind="backup") == 1
    assert v("orderdesk_mcp_job_last_run_ok", kind="upload") == 0
    upload_success = v("orderdesk_mcp_job_last_success_timestamp_seconds", kind="upload")
    upload_run = v("orderdesk_mcp_job_last_run_timestamp_seconds", kind="upload")
    assert now - 60 < upload_success <= upload_run <= now + 1
    assert v("orderdesk_mcp_job_last_success_size_bytes", kind="backup") == 12345
    # No archive in backups/: the backup age comes from the recorded job.
    backup_job = v("orderdesk_mcp_job_last_success_timestamp_seconds", kind="backup")
    assert v("orderdesk_mcp_last_backup_timestamp_seconds") == backup_job


@pytest.mark.sqlite_only  # archives of the SQLite file in the data dir
def test_backup_age_is_the_newer_of_archive_and_job(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    app = _app(settings, db, vault)
    assert not any(name == "orderdesk_mcp_last_backup_timestamp_seconds" for name, _ in scrape(app))
    record_job(db, "backup", ok=True, started=_ago(days=3))
    db.execute_sql(  # type: ignore[no-untyped-call]
        "UPDATE job_run SET finished = ? WHERE kind = 'backup'", (_ago(days=3),)
    )
    job_time = value(scrape(app), "orderdesk_mcp_last_backup_timestamp_seconds")
    create_backup(settings)  # an archive made now, e.g. by hand

    archive_time = value(scrape(app), "orderdesk_mcp_last_backup_timestamp_seconds")

    assert archive_time > job_time + 2 * 86400
    failures = [name for name, _ in scrape(app) if name.endswith("_job_last_run_ok")]
    assert failures  # the job series stay: one truth each, documented in metrics_jobs.py


def test_readiness_is_on_metrics_per_check(
    settings: Settings, db: peewee.Database, vault: Vault
) -> None:
    samples = scrape(_app(settings, db, vault))
    assert value(samples, "orderdesk_mcp_ready") == 1
    for check in ("database", "cache", "master_key", "disk_space"):
        assert value(samples, "orderdesk_mcp_readiness_check_ok", check=check) == 1

    unready = _app(settings.replace(ready_min_free_mb=10**9), db, vault)
    samples = scrape(unready)
    assert value(samples, "orderdesk_mcp_ready") == 0
    assert value(samples, "orderdesk_mcp_readiness_check_ok", check="disk_space") == 0
    assert value(samples, "orderdesk_mcp_readiness_check_ok", check="database") == 1


# --- alert rules ------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ALERTS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_cover_backups_uploads_readiness_and_429s() -> None:
    rules = _rule_expressions()
    assert "orderdesk_mcp_last_backup_timestamp_seconds" in rules["OrderdeskMcpBackupStale"]
    assert 'kind="backup"' in rules["OrderdeskMcpBackupFailed"]
    assert 'kind="upload"' in rules["OrderdeskMcpUploadFailed"]
    assert 'kind="upload"' in rules["OrderdeskMcpUploadStale"]
    assert "orderdesk_mcp_ready" in rules["OrderdeskMcpNotReady"]
    assert "upstream_rate_limited" in rules["OrderdeskMcpUpstreamRateLimited"]
    tested = RULE_TESTS.read_text(encoding="utf-8")
    for name in (
        "OrderdeskMcpNotReady",
        "OrderdeskMcpBackupFailed",
        "OrderdeskMcpUploadFailed",
        "OrderdeskMcpUploadStale",
        "OrderdeskMcpBackupStale",
        "OrderdeskMcpUpstreamRateLimited",
    ):
        assert f"alertname: {name}\n" in tested, f"{name} has no promtool unit test"


# --- the Grafana dashboard --------------------------------------------------------------


def test_dashboard_is_importable_with_a_datasource_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "orderdesk-mcp"
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'job="$job"' in target["expr"], (panel["title"], target["expr"])
    titles = " ".join(panel["title"] for panel in panels).lower()
    for topic in ("http", "latency", "tool errors", "order desk", "429", "cache", "sessions",
                  "backup", "upload", "maintenance"):  # fmt: skip
        assert topic in titles, topic


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every query as a recording rule: a typo fails here, not on the screen.
    queries = []
    for query in _dashboard_queries():
        if query.startswith("label_values("):
            query = query[len("label_values(") :].rsplit(",", 1)[0]
        for variable, filled in GRAFANA_VARIABLES.items():
            query = query.replace(variable, filled)
        queries.append(query)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": q} for n, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def exercised_server_metrics(tmp_path: Path, sandbox: RunningSandbox) -> tuple[str, Samples]:
    """/metrics of a real serve process (text, samples) after tool calls, a backup and a
    maintenance run."""
    group = ServerGroup.prepare(tmp_path, sandbox)
    served = group.start_one()
    try:
        session = open_session(served.url, group.token)
        call_tool(served.url, group.token, session, "list_orders", {"store": "demo", "limit": 2})
        call_tool(served.url, group.token, session, "get_order", {"order_id": "999999999"})
        run_cli(group.env, "backup", "create")
        run_cli(group.env, "db", "maintain")
        reply = requests.get(f"{served.base}/metrics", timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.text, parse_exposition(reply.text)
    finally:
        group.stop_all()


SUFFIXES_BY_TYPE = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
    "gauge": ("",),
}


@pytest.fixture
def exercised_server_families(exercised_server_metrics: tuple[str, Samples]) -> dict[str, str]:
    """Family name -> type, from the real server's exposition."""
    return {
        family.name: family.type
        for family in text_string_to_metric_families(exercised_server_metrics[0])
    }


def _is_exported(name: str, families: dict[str, str]) -> bool:
    """A query may use a gauge's name, a counter's _total, a histogram's _bucket/_sum/_count
    or an info's _info: only as the server writes them."""
    for family, kind in families.items():
        for suffix in SUFFIXES_BY_TYPE.get(kind, ("",)):
            if name == family + suffix:
                return True
    return False


@pytest.mark.slow  # a real serve process on a prepared data dir
def test_dashboard_and_alerts_name_only_metrics_a_real_server_exports(
    exercised_server_metrics: tuple[str, Samples], exercised_server_families: dict[str, str]
) -> None:
    used = set(METRIC_NAME.findall(" ".join(_dashboard_queries())))
    used |= set(METRIC_NAME.findall(" ".join(_rule_expressions().values())))
    assert len(used) > 20
    unknown = sorted(name for name in used if not _is_exported(name, exercised_server_families))
    assert not unknown, f"queries name metrics the server does not export: {unknown}"
    samples = exercised_server_metrics[1]
    assert value(samples, "orderdesk_mcp_job_last_run_ok", kind="maintain") == 1
    assert value(samples, "orderdesk_mcp_ready") == 1
    assert value(samples, "orderdesk_mcp_last_backup_timestamp_seconds") > 1.7e9
    tool_calls = [labels for name, labels in samples if name == "orderdesk_mcp_tool_calls_total"]
    assert {dict(labels)["tool"] for labels in tool_calls} >= {"list_orders", "get_order"}
