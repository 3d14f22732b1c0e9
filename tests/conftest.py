"""Shared fixtures. Each part of the project adds its fixtures here, smallest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
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
