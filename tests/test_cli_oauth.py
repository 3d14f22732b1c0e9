"""Operators' OAuth commands through click's runner: tenant set-password and invite, oauth
clients and grants, keys narrowed to stores, and key revocation reaching the grants made
with the key. Nothing secret in output (but the invite URL, shown once) or in the audit."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from orderdesk_mcp.auth import verify_token
from orderdesk_mcp.db.models import (
    ApiKey,
    AuditEvent,
    OAuthClient,
    OAuthGrant,
    Store,
    Tenant,
    TenantInvite,
    utcnow,
)
from orderdesk_mcp.invites import find_invite
from orderdesk_mcp.oauth.grants import create_grant
from orderdesk_mcp.oauth.rights import GrantRights
from orderdesk_mcp.passwords import verify_password
from tests.test_cli import _initialised, _json

PASSWORD = "correct horse battery staple"


def _acme(run: Any) -> str:
    """An initialised data dir with tenant acme and stores main and outlet; acme's key."""
    _initialised(run)
    key: str = _json(run("tenant", "create", "acme", "--json"))["api_key"]
    for store_id, alias in (("1001", "main"), ("1002", "outlet")):
        added = run(
            "store", "add", "--tenant", "acme", "--store-id", store_id, "--alias", alias,
            "--api-key-stdin", "--no-verify", input="sk_test\n",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    return key


def _audit_text() -> str:
    return "\n".join(f"{e.action} {e.arguments}" for e in AuditEvent.select())


def _grant(client_id: str = "https://claude.ai/oauth/client.json", **rights: Any) -> OAuthGrant:
    client = OAuthClient.get_or_none(OAuthClient.client_id == client_id) or OAuthClient.create(
        client_id=client_id,
        kind="metadata_document",
        metadata=json.dumps(
            {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]}
        ),
    )
    return create_grant(
        tenant_id=Tenant.get().id,
        client=client,
        rights=GrantRights(
            read_only=rights.get("read_only", True),
            store_ids=rights.get("store_ids"),
            toolsets=rights.get("toolsets"),
        ),
        via_key_id=rights.get("via_key_id"),
        resource="http://127.0.0.1:8080/mcp",
        redirect_uri="https://claude.ai/api/mcp/auth_callback",
    )


def test_set_password_reads_one_line_and_never_echoes_it(run: Any) -> None:
    _acme(run)
    result = run("tenant", "set-password", "acme", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert verify_password(Tenant.get().password_hash, PASSWORD)
    assert "admin:tenant.set_password" in _audit_text()
    assert PASSWORD not in _audit_text()


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("", "no password on standard input"), ("short\n", "at least 12 characters")],
)
def test_set_password_refuses_empty_or_short_input(run: Any, stdin: str, message: str) -> None:
    _acme(run)
    result = run("tenant", "set-password", "acme", "--password-stdin", input=stdin)
    assert result.exit_code == 1
    assert message in result.stderr
    assert Tenant.get().password_hash is None


def test_set_password_without_a_terminal_says_to_use_stdin(run: Any) -> None:
    _acme(run)
    result = run("tenant", "set-password", "acme", input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert "--password-stdin" in result.stderr


def test_invite_needs_the_public_url(run: Any) -> None:
    _acme(run)
    result = run("tenant", "invite", "acme")
    assert result.exit_code == 1
    assert "ORDERDESK_MCP_PUBLIC_URL" in result.stderr


def test_invite_prints_a_one_time_url_as_json(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _acme(run)
    monkeypatch.setenv("ORDERDESK_MCP_PUBLIC_URL", "https://mcp.example.com")
    data = _json(run("tenant", "invite", "acme", "--expires", "2h", "--json"))
    assert set(data) == {"tenant", "url", "expires"}
    assert data["tenant"] == "acme"
    assert data["url"].startswith("https://mcp.example.com/tenant/invite/")
    expires = dt.datetime.strptime(data["expires"], "%Y-%m-%dT%H:%M:%SZ")
    assert dt.timedelta(minutes=119) < expires - utcnow() <= dt.timedelta(hours=2)
    token = data["url"].rsplit("/", 1)[1]
    assert find_invite(token) is not None
    assert token not in _audit_text()
    text = run("tenant", "invite", "acme")
    assert text.exit_code == 0
    assert "https://mcp.example.com/tenant/invite/" in text.stdout


@pytest.mark.parametrize("expires", ["tomorrow", "1m", "31d"])
def test_invite_refuses_a_bad_lifetime(
    run: Any, monkeypatch: pytest.MonkeyPatch, expires: str
) -> None:
    _acme(run)
    monkeypatch.setenv("ORDERDESK_MCP_PUBLIC_URL", "https://mcp.example.com")
    result = run("tenant", "invite", "acme", "--expires", expires)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_key_create_narrows_to_store_aliases(run: Any) -> None:
    _acme(run)
    created = _json(run("key", "create", "--tenant", "acme", "--stores", "outlet", "--json"))
    key = verify_token(created["api_key"])
    assert key is not None
    assert key.store_ids is not None
    assert len(key.store_ids) == 1
    listed = _json(run("key", "list", "--json"))["keys"]
    assert {k["key_id"]: k["stores"] for k in listed}[created["key_id"]] == "outlet"
    bad = run("key", "create", "--tenant", "acme", "--stores", "outlet,nowhere")
    assert bad.exit_code == 1
    assert "no store with alias 'nowhere'" in bad.stderr
    assert "main, outlet" in bad.stderr


def test_key_list_hides_grant_rights_and_key_revoke_refuses_them(run: Any) -> None:
    _acme(run)
    grant = _grant()
    rights_id = grant.api_key.public_id
    listed = _json(run("key", "list", "--json"))["keys"]
    assert rights_id not in [k["key_id"] for k in listed]
    refused = run("key", "revoke", rights_id)
    assert refused.exit_code == 1
    assert "oauth grants revoke" in refused.stderr
    assert OAuthGrant.get_by_id(grant.id).revoked is None


def test_revoking_a_key_revokes_the_grants_made_with_it(run: Any) -> None:
    token = _acme(run)
    key = verify_token(token)
    assert key is not None
    made_with_key = _grant(via_key_id=key.key_id)
    by_password = _grant()
    data = _json(run("key", "revoke", key.public_id, "--json"))
    assert data == {"key_id": key.public_id, "revoked": True, "grants_revoked": 1}
    assert OAuthGrant.get_by_id(made_with_key.id).revoked is not None
    assert OAuthGrant.get_by_id(by_password.id).revoked is None


def test_clients_list_and_revoke(run: Any) -> None:
    _acme(run)
    grant = _grant()
    OAuthClient.create(client_id="reg_abc", kind="registered", metadata="{}")
    clients = {
        c["client_id"]: c for c in _json(run("oauth", "clients", "list", "--json"))["clients"]
    }
    claude = clients["https://claude.ai/oauth/client.json"]
    assert claude["kind"] == "metadata document"
    assert claude["name"] == "Claude"
    assert claude["redirect_hosts"] == "claude.ai"
    assert claude["live_grants"] == 1
    assert clients["reg_abc"]["live_grants"] == 0
    assert "Claude" in run("oauth", "clients", "list").stdout
    data = _json(run("oauth", "clients", "revoke", "https://claude.ai/oauth/client.json", "--json"))
    assert data["grants_revoked"] == 1
    assert OAuthGrant.get_by_id(grant.id).revoked_reason == "client revoked by operator"
    assert OAuthClient.get(OAuthClient.client_id == "reg_abc").revoked is None
    assert "admin:oauth.client.revoke" in _audit_text()
    missing = run("oauth", "clients", "revoke", "nope")
    assert missing.exit_code == 1
    assert "oauth clients list" in missing.stderr


def test_grants_list_shows_rights_by_alias_and_revoke(run: Any) -> None:
    _acme(run)
    outlet_id = Store.get(Store.alias == "outlet").id
    grant = _grant(store_ids=frozenset({outlet_id}), toolsets=frozenset({"orders"}))
    rows = _json(run("oauth", "grants", "list", "--tenant", "acme", "--json"))["grants"]
    assert len(rows) == 1
    row = rows[0]
    assert row["grant_id"] == grant.public_id
    assert (row["tenant"], row["client"], row["access"]) == ("acme", "Claude", "read-only")
    assert (row["stores"], row["toolsets"], row["revoked"]) == ("outlet", "orders", None)
    data = _json(run("oauth", "grants", "revoke", grant.public_id, "--json"))
    assert data["revoked"] is True
    assert ApiKey.get_by_id(grant.api_key.id).revoked is not None
    assert _json(run("oauth", "grants", "list", "--json"))["grants"] == []
    revoked = _json(run("oauth", "grants", "list", "--include-revoked", "--json"))["grants"]
    assert revoked[0]["revoked"] is not None
    again = _json(run("oauth", "grants", "revoke", grant.public_id, "--json"))
    assert again["already_revoked"] is True
    assert "admin:oauth.grant.revoke" in _audit_text()
    assert run("oauth", "grants", "revoke", "g_nope").exit_code == 1
    assert run("oauth", "grants", "list", "--tenant", "nobody").exit_code == 1


def test_disabling_a_tenant_stops_its_keys_at_once(run: Any) -> None:
    # OAuth access tokens read the same tenant flag (ocore's token check): tested there.
    token = _acme(run)
    assert run("tenant", "disable", "acme").exit_code == 0
    assert verify_token(token) is None


def test_oauth_prune_reports_and_audits(run: Any) -> None:
    _acme(run)
    TenantInvite.create(token_hash="dead", tenant=Tenant.get(), expires=utcnow() - dt.timedelta(1))
    data = _json(run("oauth", "prune", "--json"))
    assert data["invites"] == 1
    assert data["total"] == 1
    assert "admin:oauth.prune" in _audit_text()
    assert "Deleted 0 dead OAuth row(s)" in run("oauth", "prune").stdout
