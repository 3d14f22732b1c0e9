"""The `orderdesk-mcp` command line (also `python -m orderdesk_mcp`).

One click group; each module of this package holds one family of commands. Every command
that prints data takes `--json` (one JSON document on stdout, nothing else). Errors are one
line on stderr: exit 1 for bad input, 2 for usage.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from orderdesk_mcp import __version__
from orderdesk_mcp.cli.base import CliError, CliState, emit, settings_from_context
from orderdesk_mcp.config import SETTINGS

__all__ = ["CliError", "cli", "emit", "main", "settings_from_context"]


def _print_settings(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for spec in SETTINGS:
        default = "(hidden)" if spec.secret else (spec.default_text() or "(empty)")
        click.echo(f"{spec.env}\n    {spec.help}\n    default: {default}\n")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read settings from this KEY=VALUE file first (the environment still wins).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (database, cache, backups); overrides ORDERDESK_MCP_DATA_DIR.",
)
@click.option(
    "--help-settings",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_settings,
    help="List every setting (environment variable), its default and effect.",
)
@click.version_option(__version__, prog_name="orderdesk-mcp")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, data_dir: Path | None) -> None:
    """orderdesk-mcp: an MCP server for Order Desk stores."""
    ctx.obj = CliState(env_file=env_file, data_dir=data_dir)


def _add_subcommands() -> None:
    from orderdesk_mcp.cli.audit import audit
    from orderdesk_mcp.cli.backup import backup
    from orderdesk_mcp.cli.database import db, init, rotate_master_key_command
    from orderdesk_mcp.cli.oauth import oauth
    from orderdesk_mcp.cli.serving import demo, serve, stdio
    from orderdesk_mcp.cli.stores import store
    from orderdesk_mcp.cli.tenants import key, tenant
    from orderdesk_mcp.sandbox.cli import sandbox_command

    for command in (init, db, tenant, key, store, rotate_master_key_command, audit, serve, stdio):
        cli.add_command(command)
    cli.add_command(demo)
    cli.add_command(backup)
    cli.add_command(oauth)
    cli.add_command(sandbox_command, name="sandbox")


_add_subcommands()


def main() -> None:
    # Under cron or systemd the locale may be C; click needs nothing more than UTF-8 output.
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    cli(prog_name="orderdesk-mcp")
