"""Audit rows for operator actions (tenant, key and store changes, key rotation, restores).

Tool calls are audited by the MCP dispatcher; this records what operators did through the
command line, with the operating-system user who did it. Never a secret: callers pass only
names and ids, and the arguments pass through the same redaction as tool arguments.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from orderdesk_mcp.db.models import AuditEvent, Tenant
from orderdesk_mcp.mcp.audit import ADMIN_PREFIX, arguments_text

__all__ = ["ADMIN_PREFIX", "operator_name", "record_admin_action"]


def operator_name() -> str:
    """Who is at the keyboard: the sudo caller when there is one, else the login user.

    A hint for the operators' own trail, taken from the environment: anyone who can run the
    command as the service user can also set it, so it is not proof of identity.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return os.environ.get("SUDO_USER") or user


def record_admin_action(
    action: str,
    *,
    tenant: Tenant | None = None,
    store: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    AuditEvent.create(
        tenant=tenant,
        action=f"{ADMIN_PREFIX}{action}",
        store=store,
        arguments=arguments_text({**(details or {}), "by": operator_name()}),
        outcome="ok",
    )
