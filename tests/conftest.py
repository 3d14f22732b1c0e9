"""Shared fixtures. Each part of the project adds its fixtures here, smallest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.sandbox import RunningSandbox, SandboxStoreSpec, start_sandbox
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Settings on a fresh data dir with a master key file (as `orderdesk-mcp init` makes)."""
    write_key_file(data_dir / "master.key", generate_master_key())
    return load_settings(
        {"ORDERDESK_MCP_DATA_DIR": str(data_dir), "ORDERDESK_MCP_LOG_FORMAT": "text"}
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[peewee.Database]:
    """The real SQLite database of `settings`, migrated to the newest schema."""
    database = open_database(settings)
    apply_migrations(database)
    yield database
    database.close()


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
