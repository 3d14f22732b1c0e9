"""Serving the sandbox: store specs, `start_sandbox`, and the handle a test or the CLI holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from orderdesk_mcp.background_server import BackgroundServer
from orderdesk_mcp.sandbox.admin import ADMIN_PREFIX
from orderdesk_mcp.sandbox.api_context import API_PREFIX
from orderdesk_mcp.sandbox.app import create_sandbox_app
from orderdesk_mcp.sandbox.clock import Clock, system_clock
from orderdesk_mcp.sandbox.faults import FaultSettings
from orderdesk_mcp.sandbox.fields import utc_now
from orderdesk_mcp.sandbox.persistence import load_store, read_state_file, write_state_file
from orderdesk_mcp.sandbox.seed import SEEDS, apply_seed
from orderdesk_mcp.sandbox.state import SandboxState
from orderdesk_mcp.sandbox.store import StoreState

DEFAULT_THREADS = 8
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SandboxStoreSpec:
    """One store to emulate: its credentials and its starting data (`demo` or `empty`)."""

    store_id: str
    api_key: str = field(repr=False)
    seed: str = "demo"

    def __post_init__(self) -> None:
        if not self.store_id.isdigit():
            raise ValueError(
                f"store_id must be digits (Order Desk store ids are numeric), got {self.store_id!r}"
            )
        if not self.api_key or any(ch.isspace() for ch in self.api_key):
            raise ValueError("api_key must be a non-empty string without spaces")
        if self.seed not in SEEDS:
            raise ValueError(f"seed must be one of {', '.join(SEEDS)}, got {self.seed!r}")


def build_state(
    specs: Sequence[SandboxStoreSpec],
    *,
    clock: Clock = system_clock,
    faults: FaultSettings | None = None,
    state_file: Path | None = None,
) -> SandboxState:
    """Create the stores: from the state file when it holds them, else from their seed."""
    saved = read_state_file(state_file) if state_file is not None else {}
    now = utc_now()
    stores = []
    for spec in specs:
        store = StoreState(spec.store_id, spec.api_key, clock=clock, faults=faults)
        if spec.store_id in saved:
            load_store(store, saved[spec.store_id])
        else:
            apply_seed(store, spec.seed, now)
        stores.append(store)
    return SandboxState(stores, clock)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class RunningSandbox:
    """A sandbox served by waitress in a background thread. Stop it with `stop()` or `with`."""

    def __init__(
        self, state: SandboxState, host: str, port: int, threads: int, state_file: Path | None
    ) -> None:
        self.state = state
        self.state_file = state_file
        self._served = BackgroundServer(
            create_sandbox_app(state),
            name="orderdesk-sandbox",
            host=host,
            port=port,
            threads=threads,
            ident="orderdesk-sandbox",
        )
        self.host = host
        self.port = self._served.port
        root = f"http://{_url_host(host)}:{self.port}"
        self.base_url = f"{root}{API_PREFIX}"
        self.admin_url = f"{root}{ADMIN_PREFIX}"
        self._stopped = False

    @property
    def stores(self) -> Mapping[str, StoreState]:
        """The live store objects, for tests that peek (read-only use)."""
        return self.state.stores

    def store(self, store_id: str) -> StoreState:
        return self.state.store_or_error(store_id)

    def headers(self, store_id: str) -> dict[str, str]:
        """ORDERDESK-STORE-ID / ORDERDESK-API-KEY headers for one store."""
        return self.store(store_id).auth_headers()

    def stats(self, store_id: str) -> dict[str, Any]:
        """{"served", "rejected_429", "by_endpoint", "served_at"} for one store."""
        return self.store(store_id).stats.snapshot()

    def set_faults(
        self,
        store_id: str | None = None,
        latency_ms: int = 0,
        error_rate: float = 0.0,
        force_429: int = 0,
        rate_429: float = 0.0,
        drop_rate: float = 0.0,
        short_batch_results: int = 0,
    ) -> None:
        """Replace the faults of one store (or every store when store_id is None)."""
        settings = FaultSettings(
            latency_ms, error_rate, force_429, rate_429, drop_rate, short_batch_results
        )
        self.state.set_faults(settings, store_id)

    def reset_stats(self) -> None:
        for store in self.state.stores.values():
            store.stats.reset()

    def save_state(self) -> None:
        if self.state_file is not None:
            write_state_file(self.state_file, self.state.stores.values())

    def stop(self) -> None:
        """Close every connection, stop the workers, save the state file. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._served.stop(STOP_TIMEOUT_S)
        self.save_state()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_sandbox(
    stores: Sequence[SandboxStoreSpec],
    host: str = "127.0.0.1",
    port: int = 0,
    faults: FaultSettings | None = None,
    clock: Clock | None = None,
    state_file: Path | str | None = None,
    threads: int = DEFAULT_THREADS,
) -> RunningSandbox:
    """Serve the stores on host:port (0 = any free port); returns once connections are accepted."""
    if not stores:
        raise ValueError("start_sandbox needs at least one SandboxStoreSpec")
    path = Path(state_file) if state_file is not None else None
    state = build_state(stores, clock=clock or system_clock, faults=faults, state_file=path)
    return RunningSandbox(state, host, port, threads, path)
