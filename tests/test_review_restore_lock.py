"""Review regression: restore holds the data dir's server lock while it replaces the file."""

from __future__ import annotations

from typing import Any

import peewee
import pytest

import orderdesk_mcp.backup as backup_module
from orderdesk_mcp.backup import BackupError, create_backup, hold_server_lock, restore_backup
from orderdesk_mcp.config import Settings


@pytest.mark.sqlite_only  # replacing the SQLite file; a PostgreSQL restore is one transaction
def test_a_server_starting_during_a_restore_is_refused(
    settings: Settings, db: peewee.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = create_backup(settings).path
    target = settings.replace(port=0)  # nothing answers /health there
    starts: list[str] = []
    real_check = backup_module._check_database

    def check_then_a_server_starts(*args: Any) -> None:
        real_check(*args)
        # Past the "is a server running?" check, before the file is replaced: a serve
        # process of the group (shared lock) or a lone one (exclusive) starts now.
        for group in (True, False):
            try:
                with hold_server_lock(settings.data_dir, group=group):
                    starts.append("started")
            except BackupError:
                starts.append("refused")

    monkeypatch.setattr(backup_module, "_check_database", check_then_a_server_starts)
    result = restore_backup(target, archive)
    assert starts == ["refused", "refused"]
    assert result.replaced is not None
    # Released afterwards: a server starts normally.
    with hold_server_lock(settings.data_dir):
        pass
