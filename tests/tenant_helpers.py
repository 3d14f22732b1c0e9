"""Helpers for the tenant-area tests: settings with the area on, a tenant with a password,
and a Flask test client signed in through /tenant/sign-in as a browser would."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from orderdesk_mcp.config import Settings, load_settings
from orderdesk_mcp.db.models import Tenant
from orderdesk_mcp.invites import set_password
from orderdesk_mcp.tenancy import create_tenant
from orderdesk_mcp.vault import Vault

PUBLIC_URL = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery staple"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def tenant_settings(data_dir: Path, **extra: str) -> Settings:
    """Settings with OAuth on (the tenant area needs ORDERDESK_MCP_PUBLIC_URL)."""
    return load_settings(
        {
            "ORDERDESK_MCP_DATA_DIR": str(data_dir),
            "ORDERDESK_MCP_LOG_FORMAT": "text",
            "ORDERDESK_MCP_PUBLIC_URL": PUBLIC_URL,
            **extra,
        }
    )


def make_tenant(name: str, password: str = PASSWORD) -> Tenant:
    tenant = create_tenant(name, Vault.new_tenant_salt())
    set_password(tenant, password)
    return Tenant.get_by_id(tenant.id)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(
    browser: FlaskClient, name: str, password: str = PASSWORD, *, next_path: str = ""
) -> TestResponse:
    """Sign in through the form (GET for the CSRF token, then POST); returns the POST reply."""
    url = "/tenant/sign-in" + (f"?next={next_path}" if next_path else "")
    page = browser.get(url)
    assert page.status_code == 200, page.text
    return browser.post(
        url, data={"csrf_token": csrf_of(page.text), "username": name, "password": password}
    )


def signed_in(browser: FlaskClient, name: str, password: str = PASSWORD) -> FlaskClient:
    reply = sign_in(browser, name, password)
    assert reply.status_code == 303, reply.text
    return browser


def page_csrf(browser: FlaskClient, path: str) -> str:
    """The CSRF token of the signed-in session, read from a page's form."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)
