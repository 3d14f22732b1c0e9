"""The consent form: what a signed-in tenant may grant, and the rights a posted form asks for.

A form that chooses nothing (no access, no store or no toolset) is refused, never read as
"everything": a browser omits unchecked boxes, so an empty list can only mean "none".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from orderdesk_mcp.auth import TOOLSETS, parse_store_ids, parse_toolsets
from orderdesk_mcp.db.models import ApiKey, Store
from orderdesk_mcp.oauth.rights import GrantRights, RightsError

READ_ONLY = "read-only"
READ_WRITE = "read-write"
ACCESS_CHOICES = (READ_ONLY, READ_WRITE)
# Bounds on what a form may repeat: far above any real tenant's stores, far below harm.
MAX_CHOICES = 200


class ConsentError(ValueError):
    """A consent form that cannot be granted; the message is one sentence for the page."""


@dataclass(frozen=True)
class ConsentOffer:
    """What the consent page offers: no more than the signed-in tenant (or its key) holds."""

    stores: dict[str, int]  # alias -> Store row id, this tenant's only, in display order
    toolsets: tuple[str, ...]
    read_write: bool  # whether read-write may be chosen
    holder: GrantRights


@dataclass(frozen=True)
class ConsentChoice:
    """What the form chose, for showing it again after an error."""

    access: str | None
    stores: frozenset[str]
    toolsets: frozenset[str]


def key_rights(key: ApiKey) -> GrantRights:
    """The rights a tenant signed in with this API key may grant: no more than the key's."""
    return GrantRights(
        read_only="write" not in key.scopes.split(","),
        store_ids=parse_store_ids(key.store_ids),
        toolsets=parse_toolsets(key.toolsets),
    )


def offer_for(
    tenant_id: int, via_key: ApiKey | None, *, asked_read_only: bool = False
) -> ConsentOffer:
    """`asked_read_only`: the client asked only for read access, so read-write is not offered
    (a tenant may narrow what a client asks for, never widen it)."""
    holder = key_rights(via_key) if via_key is not None else GrantRights.everything()
    stores = {
        row.alias: row.id
        for row in Store.select(Store.id, Store.alias)
        .where(Store.tenant == tenant_id)
        .order_by(Store.alias)
        if holder.store_ids is None or row.id in holder.store_ids
    }
    toolsets = tuple(
        name for name in TOOLSETS if holder.toolsets is None or name in holder.toolsets
    )
    return ConsentOffer(
        stores=stores,
        toolsets=toolsets,
        read_write=not holder.read_only and not asked_read_only,
        holder=holder,
    )


def choice_from(form: MultiDict[str, str]) -> ConsentChoice:
    access = form.get("access")
    return ConsentChoice(
        access=access if access in ACCESS_CHOICES else None,
        stores=frozenset(form.getlist("store")[:MAX_CHOICES]),
        toolsets=frozenset(form.getlist("toolset")[:MAX_CHOICES]),
    )


def _chosen(values: Sequence[str], offered: Sequence[str], what: str) -> list[str]:
    if len(values) > MAX_CHOICES:
        raise ConsentError(f"The form chose too many {what}s; choose from the list.")
    chosen = list(dict.fromkeys(values))
    if not chosen:
        raise ConsentError(f"Choose at least one {what}.")
    for value in chosen:
        if value not in offered:
            raise ConsentError(f"You cannot grant the {what} {value[:40]!r}; choose from the list.")
    return chosen


def rights_from_form(form: MultiDict[str, str], offer: ConsentOffer) -> GrantRights:
    """The rights the consent form grants, or ConsentError saying what to fix."""
    access = form.get("access")
    if access not in ACCESS_CHOICES:
        raise ConsentError("Choose read-only or read-write access.")
    if not offer.stores:
        raise ConsentError("You have no store to grant yet; add a store first, or deny.")
    if access == READ_WRITE and not offer.holder.read_only and not offer.read_write:
        raise ConsentError("This app asked for read-only access; choose read-only.")
    aliases = _chosen(form.getlist("store"), list(offer.stores), "store")
    toolsets = _chosen(form.getlist("toolset"), offer.toolsets, "toolset")
    rights = GrantRights(
        read_only=access == READ_ONLY,
        store_ids=frozenset(offer.stores[alias] for alias in aliases),
        # Every toolset chosen by a tenant who holds them all: None, as for a key made
        # without --toolsets (a key narrowed to a list keeps its list).
        toolsets=None
        if offer.holder.toolsets is None and set(toolsets) == set(TOOLSETS)
        else frozenset(toolsets),
    )
    try:
        rights.within(offer.holder)
    except RightsError as error:
        text = str(error)
        raise ConsentError(f"{text[:1].upper()}{text[1:]}.") from None
    return rights
