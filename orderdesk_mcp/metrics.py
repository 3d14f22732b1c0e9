"""Prometheus metrics: what the server did, with label sets that stay small.

Each app gets its own `Metrics` (its own CollectorRegistry), so several apps in one process
(tests) never share counts. Labels are templates and fixed vocabularies: the route rule
(`/mcp`, never a path with ids), the endpoint template (`/orders/{id}`), a tool name, an
outcome, an MCP method the protocol defines (any other method name counts as `other`). Any
other label fed from outside input passes through `BoundedLabel`, which caps the number of
distinct values, so a client sending random names cannot grow the series.

Other parts report through the small functions at the bottom (`record_tool_call`,
`observe_upstream`, ...), which find the current app's Metrics, or a process-wide one
outside a Flask app context (stdio mode).
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from flask import Flask, Response, current_app, g, has_app_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orderdesk_mcp import __version__
from orderdesk_mcp.config import Secret
from orderdesk_mcp.coordination.link import shared_link
from orderdesk_mcp.coordination.metrics import RedisLinkCollector
from orderdesk_mcp.db.lookups import active_session_count
from orderdesk_mcp.http_helpers import bearer_matches, is_loopback, json_error
from orderdesk_mcp.mcp.method_names import MCP_METHODS
from orderdesk_mcp.metrics_jobs import register_job_metrics
from orderdesk_mcp.metrics_multiprocess import group_registry, multiprocess_dir
from orderdesk_mcp.metrics_ready import register_readiness_metrics
from orderdesk_mcp.server_group import group_size
from orderdesk_mcp.services import get_services

if TYPE_CHECKING:
    from orderdesk_mcp.orderdesk.machinery import UpstreamCall

log = logging.getLogger(__name__)

EXTENSION_KEY = "orderdesk_mcp.metrics"
PREFIX = "orderdesk_mcp"
OTHER = "other"
KNOWN_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
# Seconds; MCP tool calls and upstream calls run from milliseconds up to the read timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_./{}:-]{1,80}$")


class BoundedLabel:
    """Turns untrusted strings into label values: at most `limit` distinct, the rest `other`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if value in self._seen:  # admitted before (set membership needs no lock)
            return value
        if not value or not _LABEL_RE.fullmatch(value):
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
            return value


MetricT = TypeVar("MetricT", Counter, Histogram)


class Children(Generic[MetricT]):
    """A metric's labelled children, looked up once per label tuple.

    `labels(...)` validates and hashes its arguments on every call; the label values given
    here already passed a BoundedLabel (or a fixed vocabulary), so this cache is bounded too.
    """

    def __init__(self, metric: MetricT) -> None:
        self._metric: MetricT = metric
        self._children: dict[tuple[str, ...], MetricT] = {}

    def __call__(self, *values: str) -> MetricT:
        child = self._children.get(values)
        if child is None:
            # labels() returns the same child for the same values, so a race only repeats it.
            child = self._metric.labels(*values)
            self._children[values] = child
        return child


@dataclass(frozen=True)
class UpstreamTokens:
    """Order Desk's last word on a store's API budget (X-Tokens-Remaining)."""

    remaining: int
    observed_at: float  # time.time()


class _ScrapeTimeGauges(Collector):
    """Gauges computed when Prometheus scrapes, e.g. active sessions from the database."""

    def __init__(self) -> None:
        self._sources: list[tuple[str, str, Callable[[], float | None]]] = []

    def add(self, name: str, documentation: str, source: Callable[[], float | None]) -> None:
        self._sources.append((name, documentation, source))

    def collect(self) -> Iterable[Metric]:
        for name, documentation, source in self._sources:
            try:
                value = source()
            except Exception:
                # A failing source must not break the whole scrape; /health/ready reports it.
                log.warning("metric %s could not be computed", name, exc_info=True)
                continue
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=value)


class Metrics:
    """The metric families of one app, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.mcp_requests = Counter(
            f"{PREFIX}_mcp_requests", "MCP JSON-RPC messages by method.", ["method"], registry=r
        )
        self.tool_calls = Counter(
            f"{PREFIX}_tool_calls",
            "MCP tool calls by tool and outcome (ok, error, denied, ...).",
            ["tool", "outcome"],
            registry=r,
        )
        self.tool_latency = Histogram(
            f"{PREFIX}_tool_call_duration_seconds",
            "MCP tool call latency by tool.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            f"{PREFIX}_upstream_requests",
            "Order Desk API calls sent (not cache hits or coalesced) by method, endpoint "
            "template and final status ('none' when no reply came).",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            f"{PREFIX}_upstream_request_duration_seconds",
            "Order Desk API call latency (retries and waits included) by method and endpoint.",
            ["method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_retries = Counter(
            f"{PREFIX}_upstream_retries",
            "Order Desk calls repeated after a connection error or 5xx.",
            ["endpoint"],
            registry=r,
        )
        self.upstream_rate_limited = Counter(
            f"{PREFIX}_upstream_rate_limited",
            "Order Desk 429 replies waited out.",
            ["endpoint"],
            registry=r,
        )
        self.upstream_coalesced = Counter(
            f"{PREFIX}_upstream_coalesced",
            "Calls that shared the reply of an identical concurrent call instead of sending.",
            ["endpoint"],
            registry=r,
        )
        self.cache_lookups = Counter(
            f"{PREFIX}_upstream_cache_lookups",
            "Cacheable Order Desk reads by result (hit or miss).",
            ["result"],
            registry=r,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited",
            "Requests this server rejected for exceeding a rate limit, by limit kind.",
            ["kind"],
            registry=r,
        )
        self.auth_failures = Counter(
            f"{PREFIX}_auth_failures",
            "Rejected MCP authentications by reason.",
            ["reason"],
            registry=r,
        )
        self.sign_in_failures = Counter(
            f"{PREFIX}_oauth_sign_in_failures",
            "Failed sign-ins on the OAuth pages by reason (password, api_key, limited, ...).",
            ["reason"],
            registry=r,
        )
        self.audit_failures = Counter(
            f"{PREFIX}_audit_failures",
            "Audit rows that could not be written, by what happened to the call "
            "(write_refused: nothing sent; unrecorded: the call ran, its row is missing or "
            "still pending).",
            ["kind"],
            registry=r,
        )
        self.oauth_tokens_issued = Counter(
            f"{PREFIX}_oauth_tokens_issued",
            "OAuth token responses issued, by grant type (authorization_code, refresh_token).",
            ["grant_type"],
            registry=r,
        )
        self.oauth_errors = Counter(
            f"{PREFIX}_oauth_errors",
            "OAuth requests refused, by endpoint (authorize, token, register, revoke) and "
            "OAuth error code.",
            ["endpoint", "error"],
            registry=r,
        )
        self.oauth_events = Counter(
            f"{PREFIX}_oauth_events",
            "OAuth lifecycle events: grant, register, revoke, refresh_reuse, code_reuse, "
            "metadata_document_fetch.",
            ["event"],
            registry=r,
        )
        self.build_info = Info(f"{PREFIX}_build", "Version of orderdesk-mcp.", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.scrape_gauges = _ScrapeTimeGauges()
        r.register(self.scrape_gauges)
        self._started = time.time()
        # Decided once: prometheus_client chose its value store at import from the same variable.
        self._group_dir = multiprocess_dir()
        self.scrape_gauges.add(
            f"{PREFIX}_process_start_time_seconds",
            "When the process answering this scrape started (Unix time); in a server group "
            "it differs from process to process.",
            lambda: self._started,
        )
        if self._group_dir is None:
            self.scrape_gauges.add(
                f"{PREFIX}_start_time_seconds",
                "When this process started (Unix time).",
                lambda: self._started,
            )
        else:
            # Not the answering process's own start (which process answers changes from
            # scrape to scrape, and changes() would count every switch as a restart): the
            # newest start of the host's group, which changes only when one of them starts.
            Gauge(
                f"{PREFIX}_start_time_seconds",
                "When the newest serve process of this host's group started (Unix time).",
                registry=r,
                multiprocess_mode="max",
            ).set(self._started)

        self._routes = BoundedLabel(64)
        self._tools = BoundedLabel(128)
        self._outcomes = BoundedLabel(32)
        self._endpoints = BoundedLabel(128)
        self._reasons = BoundedLabel(32)
        self._kinds = BoundedLabel(16)
        self._oauth_labels = BoundedLabel(48)
        self._tokens: dict[str, UpstreamTokens] = {}
        self._tokens_lock = threading.Lock()
        self._http_requests = Children(self.http_requests)
        self._http_latency = Children(self.http_latency)
        self._mcp_requests = Children(self.mcp_requests)
        self._tool_calls = Children(self.tool_calls)
        self._tool_latency = Children(self.tool_latency)
        self._upstream_requests = Children(self.upstream_requests)
        self._upstream_latency = Children(self.upstream_latency)
        self._upstream_retries = Children(self.upstream_retries)
        self._upstream_rate_limited = Children(self.upstream_rate_limited)
        self._upstream_coalesced = Children(self.upstream_coalesced)
        self._cache_lookups = Children(self.cache_lookups)

    # --- what the other parts call ------------------------------------------------------

    def record_http(self, route: str, method: str, status: int, seconds: float) -> None:
        label_route = self._routes(route)
        label_method = method if method in KNOWN_HTTP_METHODS else OTHER
        self._http_requests(label_route, label_method, str(status)).inc()
        self._http_latency(label_route, label_method).observe(seconds)

    def record_mcp_request(self, method: str) -> None:
        # A fixed vocabulary, not a BoundedLabel: first-come slots would go to junk names.
        self._mcp_requests(method if method in MCP_METHODS else OTHER).inc()

    def record_tool_call(self, tool: str, outcome: str, seconds: float) -> None:
        label_tool = self._tools(tool)
        self._tool_calls(label_tool, self._outcomes(outcome)).inc()
        self._tool_latency(label_tool).observe(seconds)

    def record_auth_failure(self, reason: str) -> None:
        self.auth_failures.labels(self._reasons(reason)).inc()

    def record_sign_in_failure(self, reason: str) -> None:
        self.sign_in_failures.labels(self._reasons(reason)).inc()

    def record_rate_limited(self, kind: str) -> None:
        self.rate_limited.labels(self._kinds(kind)).inc()

    def record_audit_failure(self, kind: str) -> None:
        self.audit_failures.labels(self._kinds(kind)).inc()

    def record_oauth(self, kind: str, *labels: str) -> None:
        """One OAuth fact: ("tokens_issued", grant_type), ("errors", endpoint, error) or
        ("events", event); every label is bounded."""
        metric = {
            "tokens_issued": self.oauth_tokens_issued,
            "errors": self.oauth_errors,
            "events": self.oauth_events,
        }[kind]
        metric.labels(*(self._oauth_labels(label) for label in labels)).inc()

    def observe_upstream(self, call: UpstreamCall) -> None:
        """Count one Order Desk client call (the client's observer callback)."""
        endpoint = self._endpoints(call.endpoint)
        method = call.method.upper() if call.method.upper() in KNOWN_HTTP_METHODS else OTHER
        if method == "GET":
            self._cache_lookups("hit" if call.cache_hit else "miss").inc()
        if call.coalesced:
            self._upstream_coalesced(endpoint).inc()
        if not call.cache_hit and not call.coalesced:
            status = str(call.status) if call.status is not None else "none"
            self._upstream_requests(method, endpoint, status).inc()
            self._upstream_latency(method, endpoint).observe(call.duration_ms / 1000.0)
        if call.retries:
            self._upstream_retries(endpoint).inc(call.retries)
        if call.rate_limited_waits:
            self._upstream_rate_limited(endpoint).inc(call.rate_limited_waits)
        if call.tokens_remaining is not None:
            with self._tokens_lock:
                self._tokens[call.store_id] = UpstreamTokens(call.tokens_remaining, time.time())

    def upstream_tokens(self) -> dict[str, UpstreamTokens]:
        """Per store id, the last X-Tokens-Remaining Order Desk sent (for /health/detailed)."""
        with self._tokens_lock:
            return dict(self._tokens)

    def exposition(self) -> bytes:
        if self._group_dir is not None:  # a serve process of a group: every process's counts
            return generate_latest(group_registry(self.registry, self._group_dir))
        return generate_latest(self.registry)


# --- /metrics and the request hooks ------------------------------------------------------


def metrics_denial(access: str, admin_token: Secret | None) -> Response | None:
    """None when this request may read /metrics, else the response that says why not."""
    if access == "open":
        return None
    header = request.headers.get("Authorization")
    if bearer_matches(header, admin_token):
        return None
    if access == "loopback" and is_loopback(request.remote_addr):
        return None
    if admin_token is None:
        return json_error(
            403,
            "metrics are served to loopback only; scrape from this machine or set "
            "ORDERDESK_MCP_ADMIN_TOKEN and send it as a Bearer token",
        )
    return json_error(
        401,
        "metrics need the admin token: send Authorization: Bearer $ORDERDESK_MCP_ADMIN_TOKEN",
        bearer_challenge=True,
    )


def init_app(app: Flask) -> Metrics:
    """Give `app` its own Metrics, the HTTP request hooks and the /metrics route."""
    metrics = Metrics()
    app.extensions[EXTENSION_KEY] = metrics
    services = get_services(app)
    settings = services.settings

    def active_sessions() -> float:
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            seconds=settings.session_ttl
        )
        return float(active_session_count(services.database, cutoff))

    metrics.scrape_gauges.add(
        f"{PREFIX}_active_sessions", "MCP sessions not ended and not idle-expired.", active_sessions
    )

    # Job outcomes and the backup age (metrics_jobs.py); readiness checks (metrics_ready.py).
    register_job_metrics(metrics.registry, services)
    register_readiness_metrics(metrics.registry, services)

    metrics.scrape_gauges.add(
        f"{PREFIX}_server_group_size",
        "Live serve processes of the server group, on every host (fresh heartbeat rows), as "
        "this process last counted them; 1 for a lone server.",
        lambda: float(group_size()),
    )

    link = shared_link(settings)
    if link is not None:  # a server group: is its Redis reachable from here?
        metrics.registry.register(RedisLinkCollector(link, PREFIX))

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count_request(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
            metrics.record_http(
                rule, request.method, response.status_code, time.perf_counter() - started
            )
        return response

    @app.get("/metrics")
    def serve_metrics() -> Response:
        denial = metrics_denial(settings.metrics_access, settings.admin_token)
        if denial is not None:
            return denial
        return Response(metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)

    return metrics


# --- lookup for callers that only know "the current app" --------------------------------

_process_metrics: Metrics | None = None
_process_lock = threading.Lock()


def get_metrics(app: Flask | None = None) -> Metrics:
    """The Metrics of `app`, else of the current app, else the process-wide one (stdio)."""
    global _process_metrics
    if app is None and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app is not None and EXTENSION_KEY in app.extensions:
        found: Metrics = app.extensions[EXTENSION_KEY]
        return found
    with _process_lock:
        if _process_metrics is None:
            _process_metrics = Metrics()
        return _process_metrics


def record_mcp_request(method: str) -> None:
    get_metrics().record_mcp_request(method)


def record_tool_call(tool: str, outcome: str, seconds: float) -> None:
    get_metrics().record_tool_call(tool, outcome, seconds)


def record_auth_failure(reason: str) -> None:
    get_metrics().record_auth_failure(reason)


def record_sign_in_failure(reason: str) -> None:
    get_metrics().record_sign_in_failure(reason)


def record_rate_limited(kind: str) -> None:
    get_metrics().record_rate_limited(kind)


def record_audit_failure(kind: str) -> None:
    get_metrics().record_audit_failure(kind)


def record_oauth(kind: str, *labels: str) -> None:
    get_metrics().record_oauth(kind, *labels)


def observe_upstream(call: UpstreamCall) -> None:
    get_metrics().observe_upstream(call)
