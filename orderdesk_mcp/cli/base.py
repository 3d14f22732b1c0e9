"""What every command shares: settings from the root context, the database, the vault, output.

Errors are one line on stderr: exit 1 for bad input (CliError), 2 for usage (click).
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import peewee

from orderdesk_mcp.auth import UNSAFE_TEXT_CATEGORIES, AuthError
from orderdesk_mcp.config import Settings, SettingsError, load_settings
from orderdesk_mcp.db.connection import open_database, scrub_password
from orderdesk_mcp.db.migrations import (
    LATEST_VERSION,
    apply_migrations,
    current_version,
    pending_migrations,
)
from orderdesk_mcp.invites import InviteError
from orderdesk_mcp.oauth.grants import GrantError
from orderdesk_mcp.passwords import PasswordError
from orderdesk_mcp.tenancy import TenancyError
from orderdesk_mcp.vault import Vault, VaultError
from orderdesk_mcp.vault_canary import CanaryStatus, MasterKeyMismatch, check_master_key


class CliError(click.ClickException):
    """Bad input or state: one line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


@dataclass
class CliState:
    env_file: Path | None
    data_dir: Path | None
    _settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None or overrides:
            try:
                settings = load_settings(
                    env_file=self.env_file, **{"data_dir": self.data_dir, **overrides}
                )
            except SettingsError as exc:
                raise CliError(str(exc)) from None
            if overrides:
                return settings
            self._settings = settings
        return self._settings


def settings_from_context(ctx: click.Context, **overrides: Any) -> Settings:
    state: CliState = ctx.find_root().obj
    return state.settings(**overrides)


# What opening or querying a database can raise when the URL, driver or file is wrong.
DATABASE_ERRORS = (peewee.OperationalError, peewee.ImproperlyConfigured, RuntimeError, OSError)


def connect_database(settings: Settings) -> peewee.Database:
    """Open the configured database or stop with one line naming the setting."""
    try:
        db = open_database(settings)
        db.connect(reuse_if_open=True)
    except DATABASE_ERRORS as exc:
        reason = scrub_password(str(exc).strip(), settings.effective_database_url)
        raise CliError(
            f"cannot open the database ({reason}); check ORDERDESK_MCP_DATABASE_URL and the "
            "data dir"
        ) from None
    return db


def open_current_database(settings: Settings, *, upgrade: bool = False) -> peewee.Database:
    """Open the database; refuse (or, with upgrade=True, apply) pending migrations."""
    db = connect_database(settings)
    version = current_version(db)
    if version > LATEST_VERSION:
        raise CliError(
            f"the database schema is at version {version}, newer than this release knows "
            f"({LATEST_VERSION}); run the newer release, or restore a backup taken before the "
            "upgrade (docs/DEPLOYMENT.md, rollback)"
        )
    if pending_migrations(db):
        if upgrade:
            apply_migrations(db)
        else:
            raise CliError(
                f"the database schema is at version {version}, this release needs "
                f"{LATEST_VERSION}; run `orderdesk-mcp db upgrade` first"
            )
    return db


def load_vault(settings: Settings) -> Vault:
    try:
        return Vault.from_settings(settings)
    except VaultError as exc:
        raise CliError(str(exc)) from None


def require_master_key(settings: Settings) -> tuple[Vault, CanaryStatus]:
    """The vault, once its master key has opened (or written) the database's key canary.

    The database must be open and migrated. A wrong key stops here with one line saying
    what to do, instead of failing every tool call later.
    """
    vault = load_vault(settings)
    try:
        return vault, check_master_key(vault)
    except MasterKeyMismatch as exc:
        raise CliError(str(exc)) from None


@contextmanager
def translated_errors() -> Iterator[None]:
    """Our own bad-input errors become one clean line, never a traceback."""
    try:
        yield
    except (
        TenancyError,
        AuthError,
        VaultError,
        SettingsError,
        InviteError,
        PasswordError,
        GrantError,
    ) as exc:
        raise CliError(str(exc)) from None


def emit(as_json: bool, data: Any, text: str | Callable[[], str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def printable(text: str) -> str:
    """`text` with control and format characters (auth.UNSAFE_TEXT_CATEGORIES: C0 and C1
    controls, bidi overrides, line separators) written as escapes, so what a tenant typed
    can never move the cursor or recolour an operator's terminal."""
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in UNSAFE_TEXT_CATEGORIES
        else char
        for char in text
    )


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [{c: "-" if r.get(c) is None else printable(str(r[c])) for c in columns} for r in rows]
    widths = {c: max(len(c), *(len(cell[c]) for cell in cells)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(cell[c].ljust(widths[c]) for c in columns) for cell in cells]
    return "\n".join(line.rstrip() for line in lines)


_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_age(value: str) -> dt.timedelta | None:
    """30m, 12h or 7d as a timedelta; None when `value` is not written that way."""
    if value[-1:] in _UNIT_SECONDS and value[:-1].isdigit():
        return dt.timedelta(seconds=int(value[:-1]) * _UNIT_SECONDS[value[-1]])
    return None


def iso_utc(moment: dt.datetime) -> str:
    """A naive UTC datetime (as the models store them) in ISO 8601 with Z."""
    return moment.replace(microsecond=0).isoformat() + "Z"


def short_time(moment: dt.datetime | None) -> str | None:
    """How listings show a stored time (UTC, to the second); None stays None."""
    return moment.isoformat(sep=" ", timespec="seconds") if moment is not None else None


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
