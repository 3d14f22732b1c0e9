"""Checking a posted sign-in form: a tenant name and password, or a tenant API key.

Every failure gets the same sentence for its method, whatever went wrong (unknown tenant,
wrong password, no password set, disabled tenant, revoked key), so the form never tells
whether a tenant exists. Failures are counted per address and per (address, tenant name),
audited (tenant when known, the address, never what was typed) and counted in metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g
from werkzeug.datastructures import MultiDict

from orderdesk_mcp import auth, metrics, passwords
from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.audit import arguments_text
from orderdesk_mcp.oauth.sign_in_limits import SignInLimits

PASSWORD_FAILED = "That tenant name and password do not match; check both and try again."  # noqa: S105
API_KEY_FAILED = "That API key is not valid; paste a current tenant API key (odmcp_...)."
NOTHING_ENTERED = "Enter your tenant name and password, or paste a tenant API key."
BOTH_ENTERED = "Sign in with your tenant name and password or with an API key, not both."
MAX_NAME_CHARS = 64
AUDIT_SIGN_IN = "oauth.sign_in"
AUDIT_SIGN_IN_FAILED = "oauth.sign_in_failed"


class SignInFailed(Exception):
    """The form did not sign anyone in; `message` is the page's sentence."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # set when the failure limits refused to check


@dataclass(frozen=True)
class SignedIn:
    tenant_id: int
    via_key_id: int | None  # the API key used to sign in, if that is how


def _audit(
    action: str, outcome: str, *, tenant_id: int | None, key_id: int | None, details: dict[str, Any]
) -> None:
    AuditEvent.create(
        tenant=tenant_id,
        api_key=key_id,
        action=action,
        arguments=arguments_text(details),
        outcome=outcome,
        request_id=g.get("request_id"),
    )


def check_sign_in(form: MultiDict[str, str], address: str, limits: SignInLimits) -> SignedIn:
    """Who the form signs in, or SignInFailed with the sentence to show."""
    api_key = form.get("api_key", "").strip()
    username = form.get("username", "").strip()
    password = form.get("password", "")
    if api_key and (username or password):
        raise SignInFailed(BOTH_ENTERED)
    if not api_key and not (username and password):
        raise SignInFailed(NOTHING_ENTERED)
    method = "api_key" if api_key else "password"
    tenant_name = None if api_key else username[:MAX_NAME_CHARS]
    wait = limits.blocked(address, tenant_name)
    if wait is not None:
        # Refused unchecked: not audited one by one (a flood would fill the table), counted.
        metrics.record_rate_limited("sign_in_failures")
        metrics.record_sign_in_failure("limited")
        raise SignInFailed(
            f"Too many failed sign-ins from your address; try again in {wait} seconds.",
            retry_after=wait,
        )
    if api_key:
        key = auth.verify_token(api_key)  # None for a revoked key or a disabled tenant
        signed_in = SignedIn(key.tenant_id, key.key_id) if key is not None else None
        failure, tenant_id = API_KEY_FAILED, None
    else:
        tenant = Tenant.get_or_none(Tenant.name == tenant_name)
        # Always one Argon2id check, so an unknown tenant answers as slowly as a known one.
        matched = passwords.verify_password(tenant.password_hash if tenant else None, password)
        ok = tenant is not None and matched and not tenant.disabled
        signed_in = SignedIn(tenant_id=tenant.id, via_key_id=None) if ok and tenant else None
        failure, tenant_id = PASSWORD_FAILED, (tenant.id if tenant else None)
    if signed_in is None:
        limits.note_failure(address, tenant_name)
        metrics.record_sign_in_failure(method)
        _audit(
            AUDIT_SIGN_IN_FAILED,
            "refused",
            tenant_id=tenant_id,
            key_id=None,
            details={"address": address, "with": method},
        )
        raise SignInFailed(failure)
    _audit(
        AUDIT_SIGN_IN,
        "ok",
        tenant_id=signed_in.tenant_id,
        key_id=signed_in.via_key_id,
        details={"address": address, "with": method},
    )
    return signed_in
