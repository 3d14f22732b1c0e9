"""`orderdesk-mcp sandbox`: serve the Order Desk stand-in until Ctrl-C or SIGTERM."""

from __future__ import annotations

import ipaddress
import secrets
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from orderdesk_mcp.sandbox.faults import FaultSettings
from orderdesk_mcp.sandbox.persistence import StateFileError
from orderdesk_mcp.sandbox.seed import SEEDS
from orderdesk_mcp.sandbox.server import SandboxStoreSpec, start_sandbox

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
DEMO_STORE_ID = "100001"


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1; a name other than localhost is not assumed loopback."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _extra_store(text: str, seed: str) -> SandboxStoreSpec:
    store_id, separator, api_key = text.partition(":")
    if not separator or not store_id or not api_key:
        raise ValueError(f"--extra-store {text!r} must look like STORE_ID:API_KEY")
    return SandboxStoreSpec(store_id, api_key, seed=seed)


@click.command("sandbox", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    default=DEFAULT_HOST,
    show_default=True,
    help="Address to listen on. Only loopback is allowed unless --public is given.",
)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on; 0 picks a free port.",
)
@click.option(
    "--store-id",
    default=None,
    help=f"Store id clients send as ORDERDESK-STORE-ID (digits). Default: {DEMO_STORE_ID}, "
    "with a random API key printed at start. Give it together with --api-key.",
)
@click.option(
    "--api-key",
    default=None,
    help="API key clients send as ORDERDESK-API-KEY. Default: a new random key per start.",
)
@click.option(
    "--seed",
    type=click.Choice(SEEDS),
    default="demo",
    show_default=True,
    help="Starting data: demo = ~300 orders, ~60 inventory items and four folders; "
    "empty = the four folders only. Ignored for a store already saved in --state.",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON file to load the store from at start and save it to on Ctrl-C/SIGTERM, so "
    "changes survive restarts. Default: none (changes are lost at stop).",
)
@click.option(
    "--public",
    is_flag=True,
    default=False,
    help="Allow a non-loopback --host. Default: off, since the sandbox has no TLS and a "
    "run-time admin endpoint.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(0, 600_000),
    default=0,
    show_default=True,
    help="Delay added to every API reply, in milliseconds.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of API requests answered with an injected HTTP 500 (0 to 1).",
)
@click.option(
    "--rate-429",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of API requests answered 429 Too Many Requests although tokens remain (0 to 1).",
)
@click.option(
    "--force-429",
    type=click.IntRange(0, 1_000_000),
    default=0,
    show_default=True,
    help="Answer the next N API requests 429, then serve normally.",
)
@click.option(
    "--extra-store",
    "extra_stores",
    multiple=True,
    metavar="ID:KEY",
    help="Serve another store with this id and API key (repeatable); it gets the same --seed "
    "and its own data and rate-limit bucket.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of API requests whose connection is closed without a reply (0 to 1).",
)
def sandbox_command(
    host: str,
    port: int,
    store_id: str | None,
    api_key: str | None,
    seed: str,
    state_file: Path | None,
    public: bool,
    latency_ms: int,
    error_rate: float,
    rate_429: float,
    force_429: int,
    extra_stores: tuple[str, ...],
    drop_rate: float,
) -> None:
    """Serve a local stand-in for the Order Desk API v2 (for demos and tests)."""
    if not public and not is_loopback_host(host):
        click.echo(
            f"Error: refusing to listen on non-loopback host {host}; pass --public to allow it.",
            err=True,
        )
        raise SystemExit(1)
    if (store_id is None) != (api_key is None):
        raise click.UsageError("give --store-id and --api-key together, or neither")
    try:
        spec = SandboxStoreSpec(
            store_id or DEMO_STORE_ID,
            api_key or f"sk_sandbox_{secrets.token_urlsafe(18)}",
            seed=seed,
        )
        specs = [spec, *(_extra_store(text, seed) for text in extra_stores)]
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if len({s.store_id for s in specs}) != len(specs):
        raise click.UsageError("each store id may be served once")
    faults = FaultSettings(
        latency_ms=latency_ms,
        error_rate=error_rate,
        rate_429=rate_429,
        force_429=force_429,
        drop_rate=drop_rate,
    )
    try:
        running = start_sandbox(specs, host=host, port=port, faults=faults, state_file=state_file)
    except StateFileError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    click.echo(f"Order Desk sandbox listening: {running.base_url}")
    click.echo(f"  ORDERDESK-STORE-ID: {spec.store_id}")
    click.echo(f"  ORDERDESK-API-KEY:  {spec.api_key}   (sandbox-only key)")
    for extra in specs[1:]:
        click.echo(f"  also store {extra.store_id} with API key {extra.api_key}")
    click.echo(f"  admin (loopback):   {running.admin_url}")
    if state_file is not None:
        click.echo(f"  state file:         {state_file} (saved at stop)")
    click.echo("Ctrl-C stops it.")
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    click.echo("Sandbox stopped.")
