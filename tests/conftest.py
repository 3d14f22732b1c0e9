"""Shared fixtures. Each part of the project adds its fixtures here, smallest first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import peewee
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from orderdesk_mcp.app import create_app, get_services, observe_upstream_call
from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.background_server import BackgroundServer
from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import close_database, open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.orderdesk.machinery import UpstreamMachinery
from orderdesk_mcp.sandbox import RunningSandbox, SandboxStoreSpec, start_sandbox
from orderdesk_mcp.services import Services
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file
from tests.real_servers import PostgresServer, RedisServer
from tests.s3_server import S3Server

# No per-example deadline anywhere: these machines are shared and noisy, and a deadline is a
# timed assertion (speed is measured by the benchmarks in scripts/, never by tests).
hypothesis.settings.register_profile("orderdesk-mcp", deadline=None)
hypothesis.settings.load_profile("orderdesk-mcp")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.needs(installed, reason=...)`: a tool that `make test` installs (a browser,
    the TypeScript SDK). Missing, the test fails with the reason: a skip would let a machine
    without it pass by not testing."""
    for marker in item.iter_markers("needs"):
        if not marker.args[0]:
            pytest.fail(marker.kwargs["reason"], pytrace=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


# --- the database engine: every test on `settings`/`db` runs on SQLite and PostgreSQL ------
#
# A test (or module, via `pytestmark`) about the SQLite file itself (snapshots, pragmas, WAL,
# file modes) carries `@pytest.mark.sqlite_only`. ORDERDESK_TEST_DB_ENGINES=sqlite runs only
# SQLite, for a quick local loop; the full run covers both.
DB_ENGINES = ("sqlite", "postgresql")


def _selected_engines() -> tuple[str, ...]:
    wanted = os.environ.get("ORDERDESK_TEST_DB_ENGINES", "")
    chosen = tuple(name for name in DB_ENGINES if name in wanted.split(","))
    return chosen or DB_ENGINES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_engine" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        if "db_engine" in str(marker.args[0]):
            return  # the test chose its engines itself
    if metafunc.definition.get_closest_marker("sqlite_only"):
        engines: tuple[str, ...] = ("sqlite",)
    else:
        engines = _selected_engines()
    metafunc.parametrize("db_engine", engines, indirect=True)


@pytest.fixture
def db_engine(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_env(db_engine: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment naming this test's database: {} (SQLite in the data dir) or the URL
    of a fresh PostgreSQL database."""
    if db_engine == "sqlite":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return {"ORDERDESK_MCP_DATABASE_URL": server.create_database()}


@pytest.fixture
def settings(data_dir: Path, database_env: dict[str, str]) -> Settings:
    """Settings on a fresh data dir with a master key file (as `orderdesk-mcp init` makes),
    on this test's database engine."""
    write_key_file(data_dir / "master.key", generate_master_key())
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "text",
            **database_env,
        }
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a CLI or serve process needs to reach the settings' data dir and
    database (SQLite in the data dir, or the test's PostgreSQL database)."""
    env = {"ORDERDESK_MCP_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["ORDERDESK_MCP_DATABASE_URL"] = settings.database_url
    return env


def second_connection(database: peewee.Database) -> peewee.Database:
    """A separate connection to the same database (not the pool, not bound to the models):
    what another process would see."""
    if isinstance(database, peewee.PostgresqlDatabase):
        return peewee.PostgresqlDatabase(database.database, **database.connect_params)
    return peewee.SqliteDatabase(database.database)


@pytest.fixture
def db(settings: Settings) -> Iterator[peewee.Database]:
    """The real database of `settings` (SQLite file or PostgreSQL), migrated to the newest
    schema."""
    database = open_database(settings)
    apply_migrations(database)
    yield database
    close_database(database)


@pytest.fixture
def vault(settings: Settings) -> Vault:
    return Vault.from_settings(settings)


# The `sandbox` fixture's two stores: 100001 holds the demo data, 100002 starts empty.
SANDBOX_DEMO_STORE = "100001"
SANDBOX_EMPTY_STORE = "100002"
SANDBOX_KEYS = {
    SANDBOX_DEMO_STORE: "sk_test_sandbox_demo_100001",
    SANDBOX_EMPTY_STORE: "sk_test_sandbox_empty_100002",
}


@pytest.fixture
def sandbox_keys() -> dict[str, str]:
    """Store id -> API key of the `sandbox` fixture's stores."""
    return dict(SANDBOX_KEYS)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real Order Desk sandbox on an ephemeral loopback port (demo store + empty store)."""
    specs = [
        SandboxStoreSpec(SANDBOX_DEMO_STORE, SANDBOX_KEYS[SANDBOX_DEMO_STORE], seed="demo"),
        SandboxStoreSpec(SANDBOX_EMPTY_STORE, SANDBOX_KEYS[SANDBOX_EMPTY_STORE], seed="empty"),
    ]
    with start_sandbox(specs, host="127.0.0.1", port=0) as running:
        yield running


# --- the MCP server: the real app with a tenant whose two stores live in the sandbox ---------


@dataclass
class McpTenant:
    """A tenant with stores "demo" (100001, default) and "empty" (100002) in the sandbox."""

    tenant: Tenant
    token: str
    read_only_token: str


@dataclass
class McpServer:
    """The real app served by waitress on an ephemeral loopback port."""

    url: str
    token: str
    app: Flask
    tenant: McpTenant


class ServedApp(BackgroundServer):
    """A WSGI app served by waitress in a background thread (stop() closes everything)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app, name="mcp-test", threads=4)


def make_mcp_app(settings: Settings, database: peewee.Database, vault: Vault) -> Flask:
    """create_app with real services and Order Desk machinery that counts upstream calls."""
    machinery = UpstreamMachinery.from_settings(settings, observer=observe_upstream_call)
    services = Services(settings=settings, database=database, vault=vault, machinery=machinery)
    return create_app(settings, services)


def make_mcp_tenant(name: str, vault: Vault, sandbox: RunningSandbox) -> McpTenant:
    tenant = create_tenant(name, Vault.new_tenant_salt())
    for store_id, alias in ((SANDBOX_DEMO_STORE, "demo"), (SANDBOX_EMPTY_STORE, "empty")):
        add_store(
            tenant,
            store_id=store_id,
            api_key=SANDBOX_KEYS[store_id],
            vault=vault,
            alias=alias,
            base_url=sandbox.base_url,
        )
    return McpTenant(
        tenant=tenant,
        token=issue_key(tenant, label="test").token,
        read_only_token=issue_key(tenant, read_only=True, label="test-ro").token,
    )


@pytest.fixture
def mcp_app(settings: Settings, db: peewee.Database, vault: Vault) -> Iterator[Flask]:
    app = make_mcp_app(settings, db, vault)
    yield app
    machinery = get_services(app).machinery
    if machinery is not None:
        machinery.close()


@pytest.fixture
def mcp_tenant(db: peewee.Database, vault: Vault, sandbox: RunningSandbox) -> McpTenant:
    return make_mcp_tenant("acme", vault, sandbox)


@pytest.fixture
def mcp_server(mcp_app: Flask, mcp_tenant: McpTenant) -> Iterator[McpServer]:
    """The MCP endpoint URL and a tenant token with two stores registered against the sandbox."""
    served = ServedApp(mcp_app)
    try:
        yield McpServer(
            url=f"http://127.0.0.1:{served.port}/mcp",
            token=mcp_tenant.token,
            app=mcp_app,
            tenant=mcp_tenant,
        )
    finally:
        served.stop()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_env: dict[str, str]) -> Any:
    """Invoke the CLI on a fresh data dir (and this test's database); returns the click
    Result."""
    data_dir = tmp_path / "data"
    for name in list(os.environ):
        if name.startswith("ORDERDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERDESK_MCP_LOG_FORMAT", "text")
    for name, value in database_env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["--data-dir", str(data_dir), *args], input=input)

    invoke.data_dir = data_dir  # type: ignore[attr-defined]
    return invoke


@pytest.fixture
def oauth_env(
    data_dir: Path, database_env: dict[str, str]
) -> Iterator[tuple[Settings, peewee.Database, Vault]]:
    """OAuth on (tests/oauth_helpers.py settings), a migrated database, the vault of a new
    master key."""
    from tests.oauth_helpers import oauth_settings

    write_key_file(data_dir / "master.key", generate_master_key())
    settings = oauth_settings(data_dir, **database_env)
    database = open_database(settings)
    apply_migrations(database)
    yield settings, database, Vault.from_settings(settings)
    close_database(database)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway redis-server (with AUTH) for the session; tests keep apart by using a
    fresh ORDERDESK_MCP_REDIS_PREFIX each (see `redis_prefix`)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_prefix() -> str:
    return f"t{os.urandom(6).hex()}:"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the session; `create_database()` per test."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One throwaway S3-compatible server (moto) for the session; tests keep apart by using a
    fresh bucket each."""
    server = S3Server()
    server.start()
    yield server
    server.stop()
