"""Health endpoints: /health, /health/live, /health/ready, /health/detailed.

None of them calls Order Desk: a slow or failing upstream must not make the server look dead
(systemd, load balancers and monitors act on these answers). Readiness runs the checks of
readiness.py: what this process needs to serve, each tried for real and bounded in time.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from orderdesk_mcp import __version__
from orderdesk_mcp.backup import latest_backup, list_backups
from orderdesk_mcp.db.connection import is_postgres_url, sqlite_path_from_url
from orderdesk_mcp.db.lookups import active_session_count
from orderdesk_mcp.db.migrations import LATEST_VERSION, current_version
from orderdesk_mcp.http_helpers import bearer_matches, is_loopback, json_error
from orderdesk_mcp.metrics import get_metrics
from orderdesk_mcp.readiness import CheckResult, readiness_checks
from orderdesk_mcp.services import Services, get_services

SERVICE_NAME = "orderdesk-mcp"
logger = logging.getLogger(__name__)

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("")
def health() -> Response:
    """The process is up. Constant time: no I/O at all."""
    return jsonify(status="ok", service=SERVICE_NAME, version=__version__)


@bp.get("/live")
def live() -> Response:
    """Liveness: the process answers requests (restart it if this fails)."""
    return jsonify(status="alive", service=SERVICE_NAME)


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    """Readiness: 200 when every check passes, else 503 naming each failing check; a check
    that passes degraded (Redis down: local fallbacks) makes it 200 "degraded"."""
    services = get_services(current_app)
    checks_to_run = readiness_checks(services.settings)
    results = {name: check(services) for name, check in checks_to_run.items()}
    ok = all(result.ok for result in results.values())
    # The reasons name paths and driver errors: for this machine and the admin token only;
    # /health/ready itself stays public so load balancers can use it.
    detailed = is_loopback(request.remote_addr) or bearer_matches(
        request.headers.get("Authorization"), services.settings.admin_token
    )
    checks = {
        name: result.as_json() if detailed else _public_check(result)
        for name, result in results.items()
    }
    degraded = [name for name, result in results.items() if result.degraded]
    body: dict[str, Any] = {
        "status": "not ready" if not ok else "degraded" if degraded else "ready",
        "service": SERVICE_NAME,
        "checks": checks,
    }
    if degraded:
        body["degraded"] = degraded
    if not ok:
        body["failing"] = [name for name, result in results.items() if not result.ok]
        for name in body["failing"]:
            logger.warning("readiness check %s failed: %s", name, results[name].error)
    return jsonify(body), 200 if ok else 503


def _public_check(result: CheckResult) -> dict[str, Any]:
    return {"ok": result.ok, "degraded": True} if result.degraded else {"ok": result.ok}


def _file_bytes(path: Path | None) -> int | None:
    if path is None:
        return None
    total = 0
    found = False
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            total += candidate.stat().st_size
            found = True
        except OSError:
            continue
    return total if found else None


def _best_effort(count: Callable[[], int]) -> int | None:
    try:
        return count()
    except Exception:
        return None  # readiness reports why; details stay best-effort


def _count(services: Services, sql: str) -> int | None:
    def count() -> int:
        row = services.database.execute_sql(sql).fetchone()  # type: ignore[no-untyped-call]
        return int(row[0])

    return _best_effort(count)


def _database_bytes(services: Services) -> int | None:
    """The SQLite file with its WAL, or what PostgreSQL reports for the database."""
    url = services.settings.effective_database_url
    if is_postgres_url(url):
        return _count(services, "SELECT pg_database_size(current_database())")
    return _file_bytes(sqlite_path_from_url(url))


def _detailed(services: Services) -> dict[str, Any]:
    settings = services.settings
    now = time.time()
    cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
        seconds=settings.session_ttl
    )
    try:
        schema_version: int | None = current_version(services.database)
    except Exception:
        schema_version = None
    newest = latest_backup(settings.backups_dir)
    tokens = get_metrics().upstream_tokens()
    return {
        "status": "ok",
        "service": SERVICE_NAME,
        "version": __version__,
        "started_at": dt.datetime.fromtimestamp(services.started_at, dt.UTC).isoformat(),
        "uptime_seconds": round(now - services.started_at, 1),
        "database": {
            "bytes": _database_bytes(services),
            "schema_version": schema_version,
            "latest_schema_version": LATEST_VERSION,
        },
        "cache": {"bytes": _file_bytes(settings.cache_path)},
        "counts": {
            "tenants": _count(services, "SELECT count(*) FROM tenant"),
            "stores": _count(services, "SELECT count(*) FROM store"),
            "active_sessions": _best_effort(
                lambda: active_session_count(services.database, cutoff)
            ),
        },
        "upstream": {
            store_id: {
                "tokens_remaining": seen.remaining,
                "seen_seconds_ago": round(now - seen.observed_at, 1),
            }
            for store_id, seen in sorted(tokens.items())
        },
        "backups": {
            "count": len(list_backups(settings.backups_dir)),
            "latest": newest.path.name if newest else None,
            "latest_time": newest.created.isoformat() + "Z" if newest else None,
            "latest_age_seconds": round(newest.age_seconds, 1) if newest else None,
        },
    }


@bp.get("/detailed")
def detailed() -> Response:
    """Operator detail; needs the admin token (or, when none is set, a loopback client)."""
    services = get_services(current_app)
    token = services.settings.admin_token
    if token is None:
        if not is_loopback(request.remote_addr):
            return json_error(
                403,
                "/health/detailed is loopback-only while ORDERDESK_MCP_ADMIN_TOKEN is unset",
            )
    elif not bearer_matches(request.headers.get("Authorization"), token):
        return json_error(
            401,
            "/health/detailed needs Authorization: Bearer $ORDERDESK_MCP_ADMIN_TOKEN",
            bearer_challenge=True,
        )
    response = jsonify(_detailed(services))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
