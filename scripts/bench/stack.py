"""The data dir our server runs on: master key, schema, tenants, sandbox-backed stores, keys.

Built in-process with the package's own functions (the same ones `orderdesk-mcp init`,
`tenant create`, `store add` and `key create` use), then the server runs as a subprocess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import load_settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file

# Production settings, except limits made for many clients, not one load generator: the
# per-key request limits (a throughput benchmark is not a 429 benchmark; the limiter still runs
# on every request), the sessions per key (the governor run opens 200 at once) and the
# connections per address (every worker comes from 127.0.0.1, as every client does behind
# nginx, whose address is exempt there).
SERVER_ENV = {
    "ORDERDESK_MCP_LOG_FORMAT": "json",
    "ORDERDESK_MCP_LOG_LEVEL": "INFO",
    "ORDERDESK_MCP_RATE_LIMIT": "1000000/minute",
    "ORDERDESK_MCP_PROTOCOL_RATE_LIMIT": "1000000/minute",
    "ORDERDESK_MCP_MAX_SESSIONS_PER_KEY": "1000",
    "ORDERDESK_MCP_MAX_CONNECTIONS_PER_ADDRESS": "0",
}


@dataclass(frozen=True)
class StoreRef:
    store_id: str
    api_key: str
    alias: str


@dataclass(frozen=True)
class TenantRef:
    name: str
    token: str
    stores: tuple[StoreRef, ...]


def init_data_dir(data_dir: Path) -> None:
    """What `orderdesk-mcp init` does: a private dir, a master key file, the schema."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_key_file(data_dir / "master.key", generate_master_key())
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(data_dir)})
    database = open_database(settings)
    apply_migrations(database)
    database.close()


def add_tenants(
    data_dir: Path, tenants: list[tuple[str, list[StoreRef]]], base_url: str
) -> list[TenantRef]:
    """Create tenants with their stores (first one is the default) and one API key each."""
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(data_dir)})
    vault = Vault.from_settings(settings)
    database = open_database(settings)
    made: list[TenantRef] = []
    try:
        with database.atomic():
            for name, stores in tenants:
                tenant = create_tenant(name, Vault.new_tenant_salt())
                for index, store in enumerate(stores):
                    add_store(
                        tenant,
                        store_id=store.store_id,
                        api_key=store.api_key,
                        vault=vault,
                        alias=store.alias,
                        base_url=base_url,
                        make_default=index == 0,
                    )
                token = issue_key(tenant, label="bench").token
                made.append(TenantRef(name, token, tuple(stores)))
    finally:
        database.close()
    return made


def add_filler_tenants(data_dir: Path, count: int, prefix: str = "filler") -> None:
    """`count` more tenants, each with an API key and no store (for the auth-cost run)."""
    settings = load_settings({"ORDERDESK_MCP_DATA_DIR": str(data_dir)})
    database = open_database(settings)
    try:
        with database.atomic():
            for index in range(count):
                tenant = create_tenant(f"{prefix}-{index:05d}", Vault.new_tenant_salt())
                issue_key(tenant, label="bench")
    finally:
        database.close()
