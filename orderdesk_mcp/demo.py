"""`orderdesk-mcp demo`: the sandbox and the server together, on a throwaway data dir.

Everything is real: a real SQLite database, a sealed store key, a tenant API key, the real
MCP endpoint, and the sandbox standing in for Order Desk. Ctrl-C stops both. OAuth sign-in is
on (ORDERDESK_MCP_PUBLIC_URL is the loopback URL), and the demo tenant has a random password,
so clients that only speak OAuth (connector UIs, the MCP Inspector, mcp-remote) work too.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orderdesk_mcp.auth import issue_key
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.connection import open_database
from orderdesk_mcp.db.migrations import apply_migrations
from orderdesk_mcp.invites import set_password
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault, generate_master_key, write_key_file

DEMO_TENANT = "demo"
DEMO_STORE_ID = "100001"


@dataclass(frozen=True)
class DemoSetup:
    settings: Settings
    mcp_url: str
    api_key: str
    password: str  # the demo tenant's sign-in password, printed once like the key


def demo_public_url(host: str, port: int) -> str:
    """ORDERDESK_MCP_PUBLIC_URL for the demo: plain http is allowed on a loopback host."""
    return f"http://{host}:{port}"


def prepare_demo(settings: Settings, sandbox_base_url: str, sandbox_api_key: str) -> DemoSetup:
    """Initialise the data dir of `settings` with a demo tenant whose store is the sandbox."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not settings.default_master_key_path.exists():
        write_key_file(settings.default_master_key_path, generate_master_key())
    database = open_database(settings)
    apply_migrations(database)
    vault = Vault.from_settings(settings)
    with database.atomic():
        tenant = create_tenant(DEMO_TENANT, Vault.new_tenant_salt())
        add_store(
            tenant,
            store_id=DEMO_STORE_ID,
            api_key=sandbox_api_key,
            vault=vault,
            alias="demo",
            base_url=sandbox_base_url,
            make_default=True,
        )
        issued = issue_key(tenant, label="demo")
        password = secrets.token_urlsafe(15)
        set_password(tenant, password)
    database.close()
    return DemoSetup(
        settings=settings,
        mcp_url=f"{demo_public_url(settings.host, settings.port)}/mcp",
        api_key=issued.token,
        password=password,
    )


def oauth_instructions(mcp_url: str) -> str:
    """How a client that speaks OAuth connects: no key to paste, a browser sign-in instead."""
    return "\n".join(
        [
            "OAuth (MCP Inspector, mcp-remote, connector UIs on this machine):",
            f"  Add {mcp_url} with no key or header. The client finds the sign-in by itself",
            "  and opens your browser: sign in as tenant "
            f"{DEMO_TENANT!r} with the password above (or paste the API key),",
            "  choose what to allow, and the client gets its own token. For example:",
            f"  npx @modelcontextprotocol/inspector  (URL {mcp_url}, transport Streamable HTTP)",
            f"  npx mcp-remote {mcp_url}",
        ]
    )


def client_configurations(mcp_url: str, api_key: str) -> str:
    """Ready-to-paste configurations for common MCP clients."""
    header = {"Authorization": f"Bearer {api_key}"}
    claude_code = (
        f"claude mcp add --transport http orderdesk {mcp_url} "
        f'--header "Authorization: Bearer {api_key}"'
    )
    cursor = {"mcpServers": {"orderdesk": {"url": mcp_url, "headers": header}}}
    vscode = {"servers": {"orderdesk": {"type": "http", "url": mcp_url, "headers": header}}}
    return "\n".join(
        [
            "Claude Code:",
            f"  {claude_code}",
            "Cursor (~/.cursor/mcp.json):",
            *("  " + line for line in json.dumps(cursor, indent=2).splitlines()),
            "VS Code (.vscode/mcp.json):",
            *("  " + line for line in json.dumps(vscode, indent=2).splitlines()),
        ]
    )


def run_demo(settings: Settings, sandbox_port: int) -> None:
    """Start the sandbox and the server; block until Ctrl-C."""
    from orderdesk_mcp.app import MAX_REQUEST_BYTES, create_app, get_services
    from orderdesk_mcp.logging import configure_logging
    from orderdesk_mcp.sandbox import SandboxStoreSpec, start_sandbox
    from orderdesk_mcp.serving import GracefulServer

    configure_logging(settings)
    sandbox_key = "sandbox_" + secrets.token_urlsafe(18)
    sandbox = start_sandbox(
        [SandboxStoreSpec(store_id=DEMO_STORE_ID, api_key=sandbox_key, seed="demo")],
        host="127.0.0.1",
        port=sandbox_port,
    )
    try:
        setup = prepare_demo(settings, sandbox.base_url, sandbox_key)
        app = create_app(settings)
        server = GracefulServer(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            max_request_body_size=MAX_REQUEST_BYTES,
        )
        print(
            "\n".join(
                [
                    "orderdesk-mcp demo is running (Ctrl-C stops it).",
                    f"  Data dir (throwaway): {settings.data_dir}",
                    f"  Order Desk sandbox:   {sandbox.base_url} (store {DEMO_STORE_ID})",
                    f"  MCP endpoint:         {setup.mcp_url}",
                    f"  API key (tenant {DEMO_TENANT}): {setup.api_key}",
                    f"  Sign-in password (tenant {DEMO_TENANT}): {setup.password}",
                    "",
                    client_configurations(setup.mcp_url, setup.api_key),
                    "",
                    oauth_instructions(setup.mcp_url),
                    "",
                ]
            ),
            flush=True,
        )
        try:
            # Ctrl-C or SIGTERM: answer what is in flight, then stop.
            server.run()
        finally:
            print("\nStopping.", flush=True)
            get_services(app).close()
    finally:
        sandbox.stop()


def throwaway_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="orderdesk-mcp-demo-"))
