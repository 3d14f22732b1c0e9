"""What a grant or key may do: read-only or read-write, which stores, which toolsets.

One rule for narrowing, used by the consent form and by tests: rights asked for are granted
only within the rights of whoever consents (a tenant signed in with its password holds all
rights; one signed in with an API key holds that key's).
"""

from __future__ import annotations

from dataclasses import dataclass

from orderdesk_mcp.auth import TOOLSETS, AuthenticatedKey, format_store_ids


class RightsError(ValueError):
    """Rights that cannot be granted; the message says which and why."""


@dataclass(frozen=True)
class GrantRights:
    read_only: bool
    store_ids: frozenset[int] | None  # Store row ids; None: every store of the tenant
    toolsets: frozenset[str] | None  # None: every toolset

    @property
    def scope(self) -> str:
        return "read" if self.read_only else "read write"

    @classmethod
    def everything(cls) -> GrantRights:
        return cls(read_only=False, store_ids=None, toolsets=None)

    @classmethod
    def of_key(cls, key: AuthenticatedKey) -> GrantRights:
        """What a tenant signed in with this API key may grant: no more than the key."""
        return cls(read_only=key.read_only, store_ids=key.store_ids, toolsets=key.toolsets)

    def within(self, holder: GrantRights) -> None:
        """Raise RightsError unless these rights are no more than `holder`'s."""
        if holder.read_only and not self.read_only:
            raise RightsError("read-write access needs a read-write key or the tenant's password")
        if holder.store_ids is not None and (
            self.store_ids is None or not self.store_ids <= holder.store_ids
        ):
            raise RightsError("the key you signed in with cannot reach every store chosen")
        if holder.toolsets is not None and (
            self.toolsets is None or not self.toolsets <= holder.toolsets
        ):
            raise RightsError("the key you signed in with cannot use every toolset chosen")

    def column_values(self) -> dict[str, str | None]:
        """The ApiKey columns that carry these rights."""
        return {
            "scopes": "read" if self.read_only else "read,write",
            "store_ids": format_store_ids(self.store_ids),
            "toolsets": ",".join(sorted(self.toolsets)) if self.toolsets is not None else None,
        }


def known_toolsets() -> tuple[str, ...]:
    return TOOLSETS
