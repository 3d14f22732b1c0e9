"""What the `key` commands and the tenant's API keys page share: narrowing a key to stores
by alias, revoking a key with the grants made through it, and showing what a key reaches.

One place for each rule, whoever asks (an operator at the shell or the tenant in a browser).
"""

from __future__ import annotations

from collections.abc import Iterable

from orderdesk_mcp.auth import AuthError, parse_store_ids, revoke_key
from orderdesk_mcp.db.models import ApiKey, Store, Tenant
from orderdesk_mcp.oauth.grants import revoke_grants_made_with


class UnknownStoreAlias(ValueError):
    """An alias the tenant has no store for; `known` lists the ones it has."""

    def __init__(self, alias: str, known: list[str]) -> None:
        super().__init__(alias)
        self.alias = alias
        self.known = known


def aliases_of(tenant: Tenant) -> dict[str, int]:
    """The tenant's store aliases and their Store row ids, in alias order."""
    rows = Store.select(Store.id, Store.alias).where(Store.tenant == tenant).order_by(Store.alias)
    return {row.alias: row.id for row in rows}


def store_ids_for(tenant: Tenant, aliases: Iterable[str]) -> frozenset[int]:
    """The Store row ids of these aliases of the tenant's stores (UnknownStoreAlias else)."""
    known = aliases_of(tenant)
    wanted = list(aliases)
    for alias in wanted:
        if alias not in known:
            raise UnknownStoreAlias(alias, sorted(known))
    return frozenset(known[alias] for alias in wanted)


def store_aliases(store_ids: str | None, aliases_by_id: dict[int, str]) -> str:
    """What a narrowed key or grant reaches, by alias ("all" when not narrowed)."""
    if store_ids is None:
        return "all"
    reached = [
        aliases_by_id[i] for i in sorted(parse_store_ids(store_ids) or ()) if i in aliases_by_id
    ]
    return ",".join(reached) or "none"


def revoke_api_key(public_id: str) -> tuple[ApiKey, int]:
    """Revoke a bearer key and the OAuth grants a tenant made by signing in with it.

    Returns the key row and how many grants went. AuthError when there is no such key, or
    when the id is an OAuth grant's rights row (revoked with its grant, never alone).
    """
    existing = ApiKey.get_or_none(ApiKey.public_id == public_id)
    if existing is not None and existing.kind != "key":
        raise AuthError(
            f"{public_id!r} holds the rights of an OAuth grant, not an API key; revoke the grant "
            "with `orderdesk-mcp oauth grants revoke GRANT_ID` (`oauth grants list` shows it)"
        )
    row = revoke_key(public_id)
    return row, revoke_grants_made_with(row.id)
