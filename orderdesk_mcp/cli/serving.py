"""serve, stdio and demo: the commands that run the server."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from typing import Any

import click

from orderdesk_mcp.cli.base import (
    CliError,
    CliState,
    open_current_database,
    require_master_key,
    settings_from_context,
)
from orderdesk_mcp.config import Settings
from orderdesk_mcp.connection_guard import ConnectionLimits
from orderdesk_mcp.metrics_multiprocess import metrics_process_exit, prepare_process_dir
from orderdesk_mcp.server_group import Heartbeat, ServerIdentity


@click.command()
@click.option("--host", default=None, help="Bind address. Default: ORDERDESK_MCP_HOST (127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Default: 8080.")
@click.option("--threads", default=None, type=click.IntRange(1, 256), help="Default: 8.")
@click.option(
    "--local",
    is_flag=True,
    help="Single user, no API keys: serve the store in ORDERDESK_STORE_ID / ORDERDESK_API_KEY "
    "on a loopback address only (anything else is refused).",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, threads: int | None, local: bool
) -> None:
    """Serve MCP over HTTP with waitress (put nginx with HTTPS in front)."""
    settings = settings_from_context(ctx, host=host, port=port, threads=threads)
    run_server(settings, local=local)


@click.command()
@click.pass_context
def stdio(ctx: click.Context) -> None:
    """Serve MCP on stdin/stdout for desktop clients (the store in ORDERDESK_STORE_ID /
    ORDERDESK_API_KEY; logs go to stderr)."""
    from orderdesk_mcp.logging import configure_logging
    from orderdesk_mcp.mcp.local import LocalModeError, run_stdio

    settings = settings_from_context(ctx)
    configure_logging(settings)
    try:
        run_stdio(settings)
    except LocalModeError as exc:
        raise CliError(str(exc)) from None


@click.command()
@click.option(
    "--port",
    default=8080,
    show_default=True,
    # Not 0: the OAuth issuer and resource URLs name the port before the server binds it.
    type=click.IntRange(1, 65535),
    help="Port of the MCP server (loopback only).",
)
@click.option(
    "--sandbox-port",
    default=8090,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the Order Desk sandbox (loopback only).",
)
@click.pass_context
def demo(ctx: click.Context, port: int, sandbox_port: int) -> None:
    """Run the sandbox and the server on a throwaway data dir and print how to connect."""
    from orderdesk_mcp.demo import demo_public_url, run_demo, throwaway_data_dir

    state: CliState = ctx.find_root().obj
    throwaway = state.data_dir is None
    data_dir = state.data_dir or throwaway_data_dir()
    settings = settings_from_context(
        ctx,
        data_dir=data_dir,
        host="127.0.0.1",
        port=port,
        log_format="text",
        public_url=demo_public_url("127.0.0.1", port),
    )
    try:
        run_demo(settings, sandbox_port)
    except OSError as exc:
        raise CliError(
            f"cannot start the demo: {exc.strerror or exc}; is another server on port {port} "
            f"or {sandbox_port}? Pick others with --port/--sandbox-port"
        ) from None
    finally:
        if throwaway:
            shutil.rmtree(data_dir, ignore_errors=True)


def run_server(settings: Settings, *, local: bool = False) -> None:
    from contextlib import nullcontext

    from orderdesk_mcp.app import MAX_REQUEST_BYTES, create_app, get_services
    from orderdesk_mcp.backup import BackupError, hold_server_lock
    from orderdesk_mcp.logging import configure_logging
    from orderdesk_mcp.mcp.local import LocalModeError, create_local_app
    from orderdesk_mcp.serving import GracefulServer

    configure_logging(settings)
    if settings.reuse_port and settings.redis_url is None:
        raise CliError(
            "ORDERDESK_MCP_REUSE_PORT=true runs several serve processes on one port, and they "
            "need ORDERDESK_MCP_REDIS_URL to share Order Desk's rate limit (each would spend "
            "the whole budget on its own); set the Redis URL, or unset ORDERDESK_MCP_REUSE_PORT"
        )
    prepare_process_dir()
    if local:
        try:
            app = create_local_app(settings)
        except LocalModeError as exc:
            raise CliError(str(exc)) from None
    else:
        open_current_database(settings)
        require_master_key(settings)
        app = create_app(settings)
    options = waitress_options(settings, MAX_REQUEST_BYTES)

    # Held while serving, so `backup restore` refuses to replace the database under us, and
    # a second process refuses to start unless Redis coordinates the group.
    guard = (
        nullcontext()
        if local
        else hold_server_lock(settings.data_dir, group=settings.redis_url is not None)
    )
    try:
        with guard:
            try:
                server = GracefulServer(
                    app,
                    drain_seconds=settings.drain_seconds,
                    limits=connection_limits(settings),
                    reuse_port=settings.reuse_port,
                    **options,
                )
            except OSError as exc:
                raise CliError(
                    f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
                    + _reuse_port_hint(settings, exc)
                ) from None
            logging.getLogger("orderdesk_mcp").info(
                "serving MCP on http://%s:%s/mcp (pid %d%s)",
                settings.host,
                server.port,
                os.getpid(),
                ", port shared with SO_REUSEPORT" if settings.reuse_port else "",
            )
            heartbeat = None if local else _heartbeat(settings, app, server.port)

            def on_ready(_server: GracefulServer) -> None:
                # Written once SIGTERM is handled, so even a stop this early removes it.
                if heartbeat is not None:
                    heartbeat.start()

            try:
                # SIGTERM (systemctl stop) and Ctrl-C finish the requests in flight first.
                server.run(on_ready=on_ready)
            finally:
                if heartbeat is not None:
                    heartbeat.stop()
    except BackupError as exc:
        raise CliError(str(exc)) from None
    finally:
        get_services(app).close()
        metrics_process_exit()


def _reuse_port_hint(settings: Settings, exc: OSError) -> str:
    if exc.errno != errno.EADDRINUSE:
        return ""
    if settings.reuse_port:
        return (
            "; the process holding it does not share the port (every server of the group needs "
            "ORDERDESK_MCP_REUSE_PORT=true and must run as the same user)"
        )
    return (
        "; is another server on it? Several processes share one port only with "
        "ORDERDESK_MCP_REUSE_PORT=true"
    )


def _heartbeat(settings: Settings, app: Any, port: int) -> Heartbeat:
    """The heartbeat row of this serve process (see server_group)."""
    from orderdesk_mcp.app import get_services

    return Heartbeat(
        get_services(app).database,
        ServerIdentity.of_this_process(f"{settings.host}:{port}"),
        interval=settings.heartbeat_seconds,
    )


WAITRESS_OWN_CHANNELS = 2


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The guards against slow and greedy clients (see connection_guard), from the settings."""
    return ConnectionLimits(
        request_read_seconds=settings.request_read_seconds,
        max_connections_per_address=settings.max_connections_per_address or None,
        trusted_proxy=settings.trusted_proxy,
    )


def waitress_options(settings: Settings, max_request_bytes: int) -> dict[str, Any]:
    """The options `serve` gives waitress, from the settings."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "threads": settings.threads,
        # waitress counts its own listening socket and wake-up pipe against the limit.
        "connection_limit": settings.connection_limit + WAITRESS_OWN_CHANNELS,
        "ident": "orderdesk-mcp",
        # Waitress buffers a body before Flask sees it. This ceiling sits above the app's
        # own 1 MiB limit (body_limit.py), so the app answers first; bodies past the ceiling
        # are refused by waitress unread, in JSON too (connection_guard.JsonErrorTask).
        "max_request_body_size": max_request_bytes,
    }
    if settings.trusted_proxy:
        options["trusted_proxy"] = settings.trusted_proxy
        options["trusted_proxy_count"] = 1
        options["trusted_proxy_headers"] = {"x-forwarded-for", "x-forwarded-proto"}
        options["clear_untrusted_proxy_headers"] = True
    return options
