"""Settings: declared once, read from the environment (or an env file), validated once.

Every setting is a `SettingSpec` record (name, environment variable, default, help, parser).
That one list feeds start-up validation, `orderdesk-mcp --help-settings`, the env file
template and docs/SETTINGS.md (a test checks the docs list every setting).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ENV_PREFIX = "ORDERDESK_MCP_"


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and what is allowed."""


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# --- parsers: each turns one raw string into a value or raises SettingsError(what is allowed) ---


def _parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _parse_secret(raw: str) -> Secret | None:
    return Secret(raw.strip()) if raw.strip() else None


def _parse_path(raw: str) -> Path:
    if not raw.strip():
        raise SettingsError("a filesystem path")
    return Path(raw.strip()).expanduser()


def _parse_optional_path(raw: str) -> Path | None:
    return Path(raw.strip()).expanduser() if raw.strip() else None


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise SettingsError(f"a whole number from {low} to {high}")
        return value

    return parse


def _float_between(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"a number of seconds from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise SettingsError(f"a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise SettingsError("one of " + ", ".join(choices))
        return value

    return parse


def _parse_log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise SettingsError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return value


def _parse_csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_host(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise SettingsError("an IP address or host name to bind, e.g. 127.0.0.1")
    return value


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_http_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    try:
        parsed = urlparse(value)
        host = parsed.hostname or ""
    except ValueError:
        raise SettingsError("an https:// URL") from None
    if parsed.scheme not in {"http", "https"} or not host:
        raise SettingsError("an https:// URL (http:// only for this machine, e.g. the sandbox)")
    # The Order Desk API key travels in a header: plain HTTP only where it never leaves the host.
    if parsed.scheme == "http" and not _is_loopback_host(host):
        raise SettingsError("an https:// URL; plain http:// is allowed only for loopback hosts")
    return value


def _parse_http_urls(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_parse_http_url(part) for part in _parse_csv(raw)))


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError("true or false")


def _parse_public_url(raw: str) -> str | None:
    # OAuth's issuer and resource identifiers are built from it: scheme and host only.
    value = raw.strip().rstrip("/")
    if not value:
        return None
    try:
        parsed = urlparse(value)
        host = parsed.hostname or ""
        parsed.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingsError("an https:// URL with a host and no path") from None
    if parsed.scheme not in {"http", "https"} or not host:
        raise SettingsError("an https:// URL with a host and no path, e.g. https://mcp.example.com")
    if parsed.path or parsed.query or parsed.fragment or parsed.username or parsed.password:
        raise SettingsError("an https:// URL with a host and no path, e.g. https://mcp.example.com")
    if parsed.scheme == "http" and not _is_loopback_host(host):
        raise SettingsError(
            "an https:// URL; plain http:// is allowed only for a loopback host (make demo)"
        )
    return value


def _parse_rate_limit(raw: str) -> str:
    # flask-limiter's own parser is the authority; importing it here keeps one grammar.
    from limits import parse_many

    value = raw.strip()
    try:
        parse_many(value)
    except ValueError:
        raise SettingsError("a rate such as 120/minute or '10/second;1000/hour'") from None
    return value


def _parse_limiter_storage(raw: str) -> str:
    import importlib.util

    import limits.storage

    # limits' registry of storage schemes (not re-exported by name, hence vars()).
    schemes: dict[str, Any] = vars(limits.storage)["SCHEMES"]
    value = raw.strip()
    scheme = value.split("://", 1)[0] if "://" in value else ""
    storage = schemes.get(scheme)
    if storage is None or scheme.startswith("async+"):
        raise SettingsError("a flask-limiter storage URI such as memory:// or redis://host:6379")
    # limits' Redis storage lists both drivers, redis and valkey; a URI needs only its own.
    drivers = [
        name
        for name in getattr(storage, "DEPENDENCIES", [])
        if name != "valkey" or scheme.startswith("valkey")
    ]
    missing = [name for name in drivers if importlib.util.find_spec(name) is None]
    if missing:
        raise SettingsError(
            f"a storage whose Python driver is installed ({scheme}:// needs `pip install "
            f"{missing[0]}` in the service's venv)"
        )
    return value


def _parse_trusted_proxy(raw: str) -> str | None:
    # waitress compares the peer address with this value literally: one address, or '*'.
    value = raw.strip()
    if not value:
        return None
    if value == "*":
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SettingsError(
            "one IP address, the proxy's as waitress sees it (e.g. 127.0.0.1), or *"
        ) from None
    # Kept as written: waitress compares it with the peer address as text.
    return value


def _parse_store_id(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or value.startswith("0") or len(value) > 20:
        raise SettingsError(
            "the numeric Order Desk store id as Store Settings → API shows it "
            "(digits, no leading zero)"
        )
    return value


def _parse_database_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    from playhouse.db_url import schemes

    if value.split("://", 1)[0] not in schemes:
        raise SettingsError(
            "a database URL such as sqlite:////var/lib/orderdesk-mcp/orderdesk-mcp.db or "
            "postgresql://user@host/db"
        )
    return value


def _parse_cache_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not value.startswith("sqlite:///") or len(value) == len("sqlite:///"):
        raise SettingsError(
            "a sqlite:////abs/path/http-cache.sqlite URL (only SQLite is supported)"
        )
    return value


def _parse_redis_url(raw: str) -> Secret | None:
    # Kept as a Secret: the URL may carry the AUTH password (redis://:password@host:6379/0).
    value = raw.strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("redis", "rediss", "unix") or not (parsed.hostname or parsed.path):
        raise SettingsError(
            "a redis://[:password@]host:6379/0, rediss://... (TLS) or unix:///path URL"
        )
    return Secret(value)


def _parse_redis_prefix(raw: str) -> str:
    value = raw.strip()
    if not value or len(value) > 64 or not re.fullmatch(r"[A-Za-z0-9_.:-]+", value):
        raise SettingsError("1-64 letters, digits, '_', '.', ':' or '-', e.g. orderdesk-mcp:")
    return value


def _parse_s3_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme != "s3" or not parsed.netloc or parsed.query or parsed.fragment:
        raise SettingsError("an s3://bucket/optional/prefix URL")
    return value.rstrip("/")


def _parse_endpoint_url(raw: str) -> str | None:
    # Archives are sealed before upload and S3 requests are signed (the secret key is never
    # sent), so plain http:// is allowed here, e.g. for MinIO on a private network.
    value = raw.strip().rstrip("/")
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise SettingsError("an https://host[:port] URL of an S3-compatible service")
    return value


def _parse_backup_public_key(raw: str) -> str | None:
    import base64
    import binascii

    value = raw.strip()
    if not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 32:
        raise SettingsError(
            "the base64 Curve25519 public key `orderdesk-mcp backup keygen` prints (32 bytes)"
        )
    return value


def _default_data_dir() -> str:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(xdg) / "orderdesk-mcp")


@dataclass(frozen=True)
class SettingSpec:
    """One setting: where it comes from, its default, what it means."""

    name: str
    env: str
    default: str | Callable[[], str]
    help: str
    parse: Callable[[str], Any]
    secret: bool = False

    def default_text(self) -> str:
        return self.default() if callable(self.default) else self.default


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "data_dir",
        "ORDERDESK_MCP_DATA_DIR",
        _default_data_dir,
        "Directory for the database, the HTTP cache, backups and (dev only) the master key. "
        "Default: $XDG_DATA_HOME/orderdesk-mcp.",
        _parse_path,
    ),
    SettingSpec(
        "database_url",
        "ORDERDESK_MCP_DATABASE_URL",
        "",
        "Peewee database URL (playhouse.db_url). Empty: SQLite file orderdesk-mcp.db in the "
        "data dir. postgresql://user:password@host/db for several hosts (pooled; the password "
        "is never printed; without one libpq reads PGPASSWORD or a pgpass file).",
        _parse_database_url,
    ),
    SettingSpec(
        "master_key",
        "ORDERDESK_MCP_MASTER_KEY",
        "",
        "Base64 of the 32-byte master key that seals store API keys. Prefer a key file or a "
        "systemd credential.",
        _parse_secret,
        secret=True,
    ),
    SettingSpec(
        "master_key_file",
        "ORDERDESK_MCP_MASTER_KEY_FILE",
        "",
        "File holding the base64 master key; must not be readable by group or others. "
        "Default: $CREDENTIALS_DIRECTORY/master-key under systemd, else <data dir>/master.key.",
        _parse_optional_path,
    ),
    SettingSpec(
        "host",
        "ORDERDESK_MCP_HOST",
        "127.0.0.1",
        "Address the HTTP server binds. Keep it on loopback behind nginx; 0.0.0.0 exposes "
        "plain HTTP to the network.",
        _parse_host,
    ),
    SettingSpec(
        "port", "ORDERDESK_MCP_PORT", "8080", "TCP port of the HTTP server.", _int_between(0, 65535)
    ),
    SettingSpec(
        "reuse_port",
        "ORDERDESK_MCP_REUSE_PORT",
        "false",
        "true: listen with SO_REUSEPORT, so several serve processes (orderdesk-mcp@.service) "
        "share one port and the kernel spreads connections over them. Needs "
        "ORDERDESK_MCP_REDIS_URL.",
        _parse_bool,
    ),
    SettingSpec(
        "threads",
        "ORDERDESK_MCP_THREADS",
        "8",
        "Waitress worker threads: requests served at once. At most THREADS - 2 of them wait "
        "on Order Desk at once (calls over that get a busy answer with a retry hint; calls "
        "answered from the in-memory cache need no slot), so two always stay free for health "
        "checks, metrics and session requests. More threads cost throughput (one process, "
        "one core's worth of Python; see docs/PERFORMANCE.md).",
        _int_between(1, 256),
    ),
    SettingSpec(
        "connection_limit",
        "ORDERDESK_MCP_CONNECTION_LIMIT",
        "100",
        "Open client connections waitress accepts at once (its connection_limit); more wait in "
        "the listen backlog. nginx in front keeps only a few keep-alive connections, so this "
        "matters when clients connect directly.",
        _int_between(1, 10000),
    ),
    SettingSpec(
        "max_calls_per_store",
        "ORDERDESK_MCP_MAX_CALLS_PER_STORE",
        "3",
        "Requests to one Order Desk store one tenant may have in flight at once; a call "
        "that would add one more gets a busy result at once, with a retry hint (nothing "
        "sent). Order Desk serves a store about 3 requests a second, so more in parallel "
        "only wait for its rate limit while holding a thread.",
        _int_between(1, 256),
    ),
    SettingSpec(
        "max_calls_per_tenant",
        "ORDERDESK_MCP_MAX_CALLS_PER_TENANT",
        "4",
        "Requests to Order Desk one tenant may have in flight at once over all its stores; "
        "more get a busy result at once. Keeps one tenant's burst from taking every worker "
        "thread.",
        _int_between(1, 256),
    ),
    SettingSpec(
        "upstream_wait_seconds",
        "ORDERDESK_MCP_UPSTREAM_WAIT_SECONDS",
        "5",
        "Seconds a tool call may wait for its store's Order Desk rate limit (or a 429's "
        "X-Retry-After) before it answers busy with the wait needed, instead of holding a "
        "worker thread; 0 never waits.",
        _float_between(0, 120),
    ),
    SettingSpec(
        "max_connections_per_address",
        "ORDERDESK_MCP_MAX_CONNECTIONS_PER_ADDRESS",
        "20",
        "Open connections one client address may hold; one more is answered 503 and closed, "
        "so a single client cannot take the whole connection limit. The trusted proxy "
        "(ORDERDESK_MCP_TRUSTED_PROXY) is exempt, since behind nginx every client arrives from "
        "its address. 0: no cap.",
        _int_between(0, 10000),
    ),
    SettingSpec(
        "request_read_seconds",
        "ORDERDESK_MCP_REQUEST_READ_SECONDS",
        "30",
        "Seconds a client has to send a request's headers and body, counted from its first "
        "byte (from the connection's opening for the first request); slower connections are "
        "answered 408 and closed. Guards against clients that trickle a request to hold a "
        "connection; nginx in front enforces its own client_header_timeout/client_body_timeout.",
        _float_between(1, 600),
    ),
    SettingSpec(
        "drain_seconds",
        "ORDERDESK_MCP_DRAIN_SECONDS",
        "20",
        "On SIGTERM (systemctl stop/restart): seconds the requests in flight get to finish while "
        "new ones are answered 503 with Retry-After; calls still running then are cut and named "
        "in the log. Keep it at least 10 s below the unit's TimeoutStopSec (30 s).",
        _float_between(0, 600),
    ),
    SettingSpec(
        "public_hosts",
        "ORDERDESK_MCP_PUBLIC_HOSTS",
        "",
        "Comma-separated host names clients may use in the Host header (DNS-rebinding "
        "protection), e.g. mcp.example.com. localhost and 127.0.0.1 are always allowed.",
        _parse_csv,
    ),
    SettingSpec(
        "public_url",
        "ORDERDESK_MCP_PUBLIC_URL",
        "",
        "The server's public base URL as clients reach it, e.g. https://mcp.example.com (https, "
        "no path; http only for a loopback host). Set: OAuth 2.1 sign-in is on (Claude and "
        "ChatGPT connectors) and its host is allowed like ORDERDESK_MCP_PUBLIC_HOSTS. Empty: "
        "only tenant API keys, and the OAuth routes answer 404.",
        _parse_public_url,
    ),
    SettingSpec(
        "oauth_access_token_seconds",
        "ORDERDESK_MCP_OAUTH_ACCESS_TOKEN_SECONDS",
        "3600",
        "Lifetime of an OAuth access token in seconds; clients refresh it with their refresh "
        "token.",
        _int_between(60, 86400),
    ),
    SettingSpec(
        "oauth_refresh_token_days",
        "ORDERDESK_MCP_OAUTH_REFRESH_TOKEN_DAYS",
        "30",
        "Days an OAuth refresh token stays valid unused; each use rotates it (a reused one "
        "revokes the whole grant). A grant unused this long must sign in again.",
        _int_between(1, 365),
    ),
    SettingSpec(
        "oauth_unused_client_days",
        "ORDERDESK_MCP_OAUTH_UNUSED_CLIENT_DAYS",
        "1",
        "Days a dynamically registered OAuth client may stay without any grant before it is "
        "deleted (registration is open, so unused ones must not pile up; at most 10000 such "
        "clients at once).",
        _int_between(1, 365),
    ),
    SettingSpec(
        "oauth_cimd_allow_private",
        "ORDERDESK_MCP_OAUTH_CIMD_ALLOW_PRIVATE",
        "false",
        "Allow OAuth client ID metadata documents on private, loopback or link-local "
        "addresses (tests and closed networks only: otherwise a client_id URL could make the "
        "server fetch from inside your network).",
        _parse_bool,
    ),
    SettingSpec(
        "tenant_pages",
        "ORDERDESK_MCP_TENANT_PAGES",
        "true",
        "Turn on the tenant self-service pages under /tenant/ (stores, API keys, connected "
        "apps, activity, account), where a tenant signs in with its password. They need "
        "ORDERDESK_MCP_PUBLIC_URL, like the OAuth pages (unset: they answer 404). false: "
        "/tenant/* answers 404 except the invite link, and OAuth sign-in keeps working.",
        _parse_bool,
    ),
    SettingSpec(
        "tenant_session_idle_minutes",
        "ORDERDESK_MCP_TENANT_SESSION_IDLE_MINUTES",
        "30",
        "Minutes without a page view after which a browser sign-in session (tenant pages and "
        "the OAuth sign-in) ends and the tenant must sign in again; every session also ends "
        "12 hours after sign-in.",
        _int_between(5, 720),
    ),
    SettingSpec(
        "allowed_origins",
        "ORDERDESK_MCP_ALLOWED_ORIGINS",
        "",
        "Comma-separated browser origins allowed to call /mcp (requests with any other "
        "Origin header get 403). Empty: no browser origin is allowed.",
        _parse_csv,
    ),
    SettingSpec(
        "trusted_proxy",
        "ORDERDESK_MCP_TRUSTED_PROXY",
        "",
        "The one IP address of the reverse proxy (nginx) whose X-Forwarded-For/-Proto headers "
        "are believed, e.g. 127.0.0.1. Empty: forwarded headers are ignored, and behind a "
        "proxy every client then shares the proxy's address for rate limits.",
        _parse_trusted_proxy,
    ),
    SettingSpec(
        "rate_limit",
        "ORDERDESK_MCP_RATE_LIMIT",
        "180/minute",
        "Calls allowed per tenant API key (flask-limiter syntax): tools/call, resources/read, "
        "prompts/get, completion/complete and malformed requests. Measured with the official "
        "SDK (scripts/bench/sdk_session.py): an ordinary session makes 10 tool calls, an agent "
        "triaging 20 orders flat out 23; 180 (Order Desk's own sustained 3 requests/s per store) "
        "leaves room for about 7 such busy sessions a minute on one key. Session set-up and "
        "listing count in ORDERDESK_MCP_PROTOCOL_RATE_LIMIT instead; ending a session (DELETE) "
        "is never refused.",
        _parse_rate_limit,
    ),
    SettingSpec(
        "protocol_rate_limit",
        "ORDERDESK_MCP_PROTOCOL_RATE_LIMIT",
        "600/minute",
        "Protocol requests allowed per tenant API key (flask-limiter syntax): initialize, "
        "notifications, ping, tools/list, prompts/list, resources/list, resource templates, "
        "server/discover, logging/setLevel. An SDK session sends 5 to 7 of them (5 at "
        "revision 2026-07-28, 7 through the initialize handshake); 600 covers about 85 "
        "sessions a minute, or a dozen open sessions that re-list and ping on every turn, "
        "and still stops a flood at 10 requests/s (each answered from memory or one row).",
        _parse_rate_limit,
    ),
    SettingSpec(
        "rate_limit_storage",
        "ORDERDESK_MCP_RATE_LIMIT_STORAGE",
        "memory://",
        "flask-limiter storage URI; memory:// counts per process, redis://... shares counts "
        "between processes.",
        _parse_limiter_storage,
    ),
    SettingSpec(
        "redis_url",
        "ORDERDESK_MCP_REDIS_URL",
        "",
        "Redis shared by every serve process of the group (redis://[:password@]host:6379/0, "
        "rediss:// for TLS). Set: the Order Desk token bucket, the /mcp rate-limit counters "
        "and cache invalidation are shared, and several serve processes may run. Empty: one "
        "process, everything kept in it.",
        _parse_redis_url,
        secret=True,
    ),
    SettingSpec(
        "heartbeat_seconds",
        "ORDERDESK_MCP_HEARTBEAT_SECONDS",
        "5",
        "How often each serve process refreshes its row in server_heartbeat (restore and "
        "rotate-master-key refuse while any row is fresher than 30 s). Keep it well below 30.",
        _float_between(0.1, 10),
    ),
    SettingSpec(
        "redis_prefix",
        "ORDERDESK_MCP_REDIS_PREFIX",
        "orderdesk-mcp:",
        "Prefix of every Redis key this server group uses (one Redis may serve several groups).",
        _parse_redis_prefix,
    ),
    SettingSpec(
        "cache_url",
        "ORDERDESK_MCP_CACHE_URL",
        "",
        "Where Order Desk replies are cached. Empty: SQLite file http-cache.sqlite in the "
        "data dir.",
        _parse_cache_url,
    ),
    SettingSpec(
        "session_ttl",
        "ORDERDESK_MCP_SESSION_TTL",
        "86400",
        "Seconds an idle MCP session lives before it expires.",
        _int_between(60, 30 * 86400),
    ),
    SettingSpec(
        "max_sessions_per_key",
        "ORDERDESK_MCP_MAX_SESSIONS_PER_KEY",
        "20",
        "Live MCP sessions one API key may hold. A new session beyond it ends that key's least "
        "recently used one (its client gets 404 and initializes again). A client keeps one "
        "session per connection, so 20 covers several apps, windows and reconnects per key "
        "while a client that initializes in a loop keeps at most 20 rows; raise it for agents "
        "that run many parallel workers on one key.",
        _int_between(1, 10000),
    ),
    SettingSpec(
        "admin_token",
        "ORDERDESK_MCP_ADMIN_TOKEN",
        "",
        "Bearer token for /health/detailed and (from outside loopback) /metrics. Empty: "
        "those are loopback-only.",
        _parse_secret,
        secret=True,
    ),
    SettingSpec(
        "audit_retention_days",
        "ORDERDESK_MCP_AUDIT_RETENTION_DAYS",
        "90",
        "Days tool-call audit rows are kept; `orderdesk-mcp audit prune` (run after each "
        "backup by scripts/backup.sh and orderdesk-mcp-backup.service) deletes older ones. "
        "Operator actions (admin:* rows: tenants, keys, stores, key rotation, restores) are "
        "never pruned. 0 keeps everything.",
        _int_between(0, 36500),
    ),
    SettingSpec(
        "log_level",
        "ORDERDESK_MCP_LOG_LEVEL",
        "INFO",
        "DEBUG, INFO, WARNING, ERROR or CRITICAL.",
        _parse_log_level,
    ),
    SettingSpec(
        "log_format",
        "ORDERDESK_MCP_LOG_FORMAT",
        "json",
        "json (one JSON object per line, for journald and log shippers) or text.",
        _choice("json", "text"),
    ),
    SettingSpec(
        "orderdesk_api_base_url",
        "ORDERDESK_API_BASE_URL",
        "https://app.orderdesk.me/api/v2",
        "Order Desk API base URL; a store may override it (e.g. to point at the sandbox).",
        _parse_http_url,
    ),
    SettingSpec(
        "allowed_base_urls",
        "ORDERDESK_MCP_ALLOWED_BASE_URLS",
        "",
        "Comma-separated Order Desk API base URLs a tenant may choose for a store on the "
        "/tenant/stores page besides ORDERDESK_API_BASE_URL (https; http only for a loopback "
        "host), e.g. a sandbox for testing. Empty: the official API only. The page sends the "
        "store's key to the URL chosen, so list only servers you trust; `store add --base-url` "
        "(the operator) is not limited by it.",
        _parse_http_urls,
    ),
    SettingSpec(
        "upstream_connect_timeout",
        "ORDERDESK_MCP_UPSTREAM_CONNECT_TIMEOUT",
        "5",
        "Seconds to wait for a connection to Order Desk.",
        _float_between(0.1, 120),
    ),
    SettingSpec(
        "upstream_read_timeout",
        "ORDERDESK_MCP_UPSTREAM_READ_TIMEOUT",
        "30",
        "Seconds to wait for Order Desk to answer.",
        _float_between(0.1, 600),
    ),
    SettingSpec(
        "cache_ttl_store",
        "ORDERDESK_MCP_CACHE_TTL_STORE",
        "300",
        "Seconds a cached GET /store (settings, folders) stays fresh.",
        _int_between(0, 86400),
    ),
    SettingSpec(
        "cache_ttl_orders",
        "ORDERDESK_MCP_CACHE_TTL_ORDERS",
        "30",
        "Seconds cached order, item and shipment reads stay fresh.",
        _int_between(0, 86400),
    ),
    SettingSpec(
        "cache_ttl_inventory",
        "ORDERDESK_MCP_CACHE_TTL_INVENTORY",
        "30",
        "Seconds cached inventory reads stay fresh.",
        _int_between(0, 86400),
    ),
    SettingSpec(
        "cache_memory_seconds",
        "ORDERDESK_MCP_CACHE_MEMORY_SECONDS",
        "2",
        "Seconds a cached reply may be answered from this process's memory without reading "
        "the shared cache file (never longer than its cache lifetime); 0 turns this off. A "
        "server sees its own writes at once; a write made by another process sharing the cache "
        "file (ORDERDESK_MCP_CACHE_URL pointing at one file for several servers) is seen here "
        "at most this many seconds late; with ORDERDESK_MCP_REDIS_URL set, a write through any "
        "process of the group is seen at once.",
        _int_between(0, 60),
    ),
    SettingSpec(
        "metrics_access",
        "ORDERDESK_MCP_METRICS_ACCESS",
        "loopback",
        "Who may read /metrics: loopback (local scrapers and the admin token), token (admin "
        "token only) or open.",
        _choice("loopback", "token", "open"),
    ),
    SettingSpec(
        "ready_min_free_mb",
        "ORDERDESK_MCP_READY_MIN_FREE_MB",
        "100",
        "/health/ready reports not ready (check disk_space) when the disk of the data dir, "
        "the database or the cache has fewer free megabytes (MiB) than this: SQLite needs room "
        "for its journal and backups need room too. 0 turns the check off.",
        _int_between(0, 1_000_000_000),
    ),
    SettingSpec(
        "backup_s3_url",
        "ORDERDESK_MCP_BACKUP_S3_URL",
        "",
        "Where `backup create --upload` sends sealed archives: s3://bucket/prefix. Credentials "
        "come the standard way (AWS_* variables, a shared credentials file or a systemd "
        "credential), never from this file.",
        _parse_s3_url,
    ),
    SettingSpec(
        "backup_s3_endpoint",
        "ORDERDESK_MCP_BACKUP_S3_ENDPOINT",
        "",
        "Endpoint of an S3-compatible service other than AWS (Backblaze B2, Wasabi, MinIO), "
        "e.g. https://s3.eu-central-003.backblazeb2.com. Empty: AWS S3.",
        _parse_endpoint_url,
    ),
    SettingSpec(
        "backup_public_key",
        "ORDERDESK_MCP_BACKUP_PUBLIC_KEY",
        "",
        "Base64 public key (from `orderdesk-mcp backup keygen`) every uploaded archive is "
        "sealed to; its private key stays with the operator, so this server can write "
        "off-site backups it cannot read back.",
        _parse_backup_public_key,
    ),
    SettingSpec(
        "backup_keep_daily",
        "ORDERDESK_MCP_BACKUP_KEEP_DAILY",
        "30",
        "Days for which the newest archive of each day is kept (locally and remotely).",
        _int_between(0, 3650),
    ),
    SettingSpec(
        "backup_keep_weekly",
        "ORDERDESK_MCP_BACKUP_KEEP_WEEKLY",
        "12",
        "Weeks for which the newest archive of each week is kept, beyond the daily ones.",
        _int_between(0, 520),
    ),
    SettingSpec(
        "local_store_id",
        "ORDERDESK_STORE_ID",
        "",
        "Local mode (serve --local, stdio): the Order Desk store id.",
        _parse_store_id,
    ),
    SettingSpec(
        "local_api_key",
        "ORDERDESK_API_KEY",
        "",
        "Local mode (serve --local, stdio): the Order Desk API key.",
        _parse_secret,
        secret=True,
    ),
)

SETTINGS_BY_NAME = {spec.name: spec for spec in SETTINGS}
_KNOWN_ENV = {spec.env for spec in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The validated, immutable configuration of one process."""

    data_dir: Path
    # Out of repr: a postgresql:// URL may carry the password (print it via redact_url).
    database_url: str | None = field(repr=False)
    master_key: Secret | None
    master_key_file: Path | None
    host: str
    port: int
    reuse_port: bool
    threads: int
    connection_limit: int
    max_calls_per_store: int
    max_calls_per_tenant: int
    upstream_wait_seconds: float
    max_connections_per_address: int
    request_read_seconds: float
    drain_seconds: float
    public_hosts: tuple[str, ...]
    public_url: str | None
    oauth_access_token_seconds: int
    oauth_refresh_token_days: int
    oauth_unused_client_days: int
    oauth_cimd_allow_private: bool
    tenant_pages: bool
    tenant_session_idle_minutes: int
    allowed_origins: tuple[str, ...]
    trusted_proxy: str | None
    rate_limit: str
    protocol_rate_limit: str
    rate_limit_storage: str
    cache_url: str | None
    redis_url: Secret | None
    redis_prefix: str
    heartbeat_seconds: float
    session_ttl: int
    max_sessions_per_key: int
    admin_token: Secret | None
    audit_retention_days: int
    log_level: str
    log_format: str
    orderdesk_api_base_url: str
    allowed_base_urls: tuple[str, ...]
    upstream_connect_timeout: float
    upstream_read_timeout: float
    cache_ttl_store: int
    cache_ttl_orders: int
    cache_ttl_inventory: int
    cache_memory_seconds: int
    metrics_access: str
    ready_min_free_mb: int
    backup_s3_url: str | None
    backup_s3_endpoint: str | None
    backup_public_key: str | None
    backup_keep_daily: int
    backup_keep_weekly: int
    local_store_id: str | None
    local_api_key: Secret | None
    credentials_directory: Path | None = field(default=None)

    @property
    def oauth_enabled(self) -> bool:
        return self.public_url is not None

    @property
    def allowed_public_hosts(self) -> tuple[str, ...]:
        """ORDERDESK_MCP_PUBLIC_HOSTS plus the host of ORDERDESK_MCP_PUBLIC_URL."""
        if self.public_url is None:
            return self.public_hosts
        host = urlparse(self.public_url).hostname or ""
        return tuple(dict.fromkeys((*self.public_hosts, host)))

    @property
    def store_base_urls(self) -> tuple[str, ...]:
        """The Order Desk API base URLs a tenant may pick on its pages, the official first."""
        return tuple(dict.fromkeys((self.orderdesk_api_base_url, *self.allowed_base_urls)))

    @property
    def database_path(self) -> Path:
        return self.data_dir / "orderdesk-mcp.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path}"

    @property
    def cache_path(self) -> Path:
        # Same convention as playhouse.db_url: sqlite:///relative, sqlite:////absolute.
        if self.cache_url:
            return Path(self.cache_url[len("sqlite:///") :])
        return self.data_dir / "http-cache.sqlite"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def default_master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def read_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (systemd EnvironmentFile syntax: comments, optional quotes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot read env file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :]
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(
    environ: Mapping[str, str] | None = None,
    env_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from the environment, an optional env file and explicit overrides.

    Precedence: overrides (command-line flags) > environment > env file > defaults.
    Raises SettingsError naming the variable and what it accepts.
    """
    env = dict(os.environ if environ is None else environ)
    source: dict[str, str] = {}
    if env_file is not None:
        source.update(read_env_file(env_file))
    source.update({k: v for k, v in env.items() if k.startswith(("ORDERDESK_MCP_", "ORDERDESK_"))})

    unknown = sorted(k for k in source if k.startswith(ENV_PREFIX) and k not in _KNOWN_ENV)
    if unknown:
        raise SettingsError(
            f"{unknown[0]} is not a setting of orderdesk-mcp; see `orderdesk-mcp --help-settings` "
            "for the list"
        )

    values: dict[str, Any] = {}
    for spec in SETTINGS:
        if spec.name in overrides and overrides[spec.name] is not None:
            values[spec.name] = overrides[spec.name]
            continue
        raw = source.get(spec.env)
        if raw is None:
            raw = spec.default_text()
        try:
            values[spec.name] = spec.parse(raw)
        except SettingsError as exc:
            shown = "(hidden)" if spec.secret else repr(raw)
            raise SettingsError(f"{spec.env}={shown} is not valid: expected {exc}") from None

    credentials = env.get("CREDENTIALS_DIRECTORY")
    values["credentials_directory"] = Path(credentials) if credentials else None
    return Settings(**values)
