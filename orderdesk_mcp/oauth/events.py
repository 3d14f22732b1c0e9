"""The audit trail and metrics of the OAuth protocol: grants, refreshes, revocations, reuse.

Rows name the grant and client by their public ids, never a code or a token. A failing audit
write is logged and counted, never raised: the protocol answer matters more than its record
(the grant or revocation itself already happened in the database).
"""

from __future__ import annotations

import logging
from typing import Any

import peewee

from orderdesk_mcp import metrics
from orderdesk_mcp.db.models import AuditEvent
from orderdesk_mcp.mcp.audit import arguments_text

logger = logging.getLogger(__name__)

GRANT = "oauth.grant"
REFRESH = "oauth.token.refresh"
REVOKE = "oauth.token.revoke"
REFRESH_REUSE = "oauth.refresh_reuse"
CODE_REUSE = "oauth.code_reuse"
REGISTER = "oauth.client.register"


def record(
    action: str,
    *,
    tenant_id: int | None = None,
    key_id: int | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    metrics.record_oauth("events", action.removeprefix("oauth."))
    try:
        AuditEvent.create(
            tenant=tenant_id,
            api_key=key_id,
            action=action,
            arguments=arguments_text(details),
            outcome=outcome,
        )
    except (peewee.PeeweeException, OSError) as error:
        metrics.record_audit_failure("unrecorded")
        logger.error("audit row for %s could not be written (%s)", action, type(error).__name__)


def refused(endpoint: str, error: str) -> None:
    metrics.record_oauth("errors", endpoint, error)


def issued(grant_type: str) -> None:
    metrics.record_oauth("tokens_issued", grant_type)
