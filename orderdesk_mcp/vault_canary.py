"""The master key canary: refuse to start with a master key that is not this database's.

A wrong master key used to surface only as an opaque internal error on every tool call. The
`vault_canary` table holds one constant sealed with the master key; `check_master_key` opens
it at start-up (serve, init, db upgrade) and writes it when a database has none yet.

Writing a first canary with a wrong key would lock that wrong key in, so on a database that
already has stores the canary is written only when the key opens at least one of their keys.
"""

from __future__ import annotations

import enum
import logging

from orderdesk_mcp.db.connection import database
from orderdesk_mcp.db.models import Store, Tenant, VaultCanary, utcnow
from orderdesk_mcp.tenancy import open_store_key
from orderdesk_mcp.vault import Vault, VaultError

logger = logging.getLogger(__name__)

CANARY_ROW_ID = 1
_FIX = (
    "point ORDERDESK_MCP_MASTER_KEY_FILE (or the systemd credential master-key) at the key "
    "this database was sealed with (after `rotate-master-key`, the new key) and start again; "
    "see docs/DEPLOYMENT.md, Troubleshooting"
)


class MasterKeyMismatch(VaultError):
    """The configured master key is not the one this database's keys are sealed with."""


class CanaryStatus(enum.Enum):
    OPENED = "ok"
    WRITTEN = "written"


def _source(vault: Vault) -> str:
    return vault.source.describe() if vault.source else "the master key"


def _opens_a_store_key(vault: Vault) -> bool | None:
    """None when there are no stores; else whether the key opens at least one of them."""
    stores = list(Store.select(Store, Tenant).join(Tenant).order_by(Store.id))
    if not stores:
        return None
    for store in stores:
        try:
            open_store_key(store, vault)
        except VaultError:
            continue
        return True
    return False


def check_master_key(vault: Vault) -> CanaryStatus:
    """Open the canary (or write the first one); MasterKeyMismatch when the key is wrong.

    The database must be open and migrated.
    """
    row = VaultCanary.get_or_none(VaultCanary.id == CANARY_ROW_ID)
    if row is not None:
        if vault.opens_canary(row.sealed):
            return CanaryStatus.OPENED
        raise MasterKeyMismatch(
            f"the master key from {_source(vault)} does not open this database's key canary, "
            f"so it cannot open any stored Order Desk key; {_FIX}"
        )
    if _opens_a_store_key(vault) is False:
        raise MasterKeyMismatch(
            f"the master key from {_source(vault)} opens none of the stored Order Desk keys; {_FIX}"
        )
    # Two processes starting at once: the second insert is ignored, then both check the row.
    VaultCanary.insert(
        id=CANARY_ROW_ID, sealed=vault.seal_canary(), created=utcnow()
    ).on_conflict_ignore().execute()
    stored = VaultCanary.get(VaultCanary.id == CANARY_ROW_ID)
    if not vault.opens_canary(stored.sealed):
        raise MasterKeyMismatch(
            f"another process wrote a key canary that the master key from {_source(vault)} "
            f"does not open; {_FIX}"
        )
    logger.info("wrote the master key canary")
    return CanaryStatus.WRITTEN


def reseal_canary(new: Vault) -> None:
    """Replace the canary with one sealed under `new`; call it inside the rotation's
    transaction, so the canary and the store keys change together."""
    with database.atomic():
        VaultCanary.delete().execute()
        VaultCanary.create(id=CANARY_ROW_ID, sealed=new.seal_canary(), created=utcnow())
