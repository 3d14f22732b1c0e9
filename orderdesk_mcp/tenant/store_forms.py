"""Reading the stores page's forms: what a merchant typed, checked before anything is sent.

The rules themselves live in tenancy.py (store id, alias, API key) and in the operator's
settings (the base URLs on offer); this module only turns form fields into their arguments
and a refusal into one sentence for the page. An error never carries the API key, and the
kept values (shown again in the form) never include it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orderdesk_mcp.tenancy import (
    TenancyError,
    validate_alias,
    validate_store_api_key,
    validate_store_id,
)

# Longer than any real value: an overlong field is refused before it reaches a rule (or a
# message that would echo it).
MAX_STORE_ID_CHARS = 20
MAX_ALIAS_CHARS = 40
MAX_API_KEY_CHARS = 256
BASE_URL_NOT_OFFERED = (
    "That Order Desk address is not one this service offers; choose one from the list."
)
API_KEY_MISSING = "Paste the store's Order Desk API key (Store Settings → API in Order Desk)."
API_KEY_MALFORMED = (
    "That API key has spaces or characters an Order Desk key never has; copy it again from "
    "Store Settings → API in Order Desk."
)


def sentence(problem: Exception) -> str:
    """A rule's message as the page's one sentence: capital first, full stop last."""
    text = str(problem).strip()
    return f"{text[:1].upper()}{text[1:]}" + ("" if text.endswith(".") else ".")


class StoreFormError(ValueError):
    """The form cannot be used as typed; `message` is the page's sentence, `kept` the fields
    to show again (never the API key)."""

    def __init__(self, message: str, kept: Mapping[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.kept = dict(kept)


@dataclass(frozen=True)
class NewStore:
    store_id: str
    alias: str | None  # None: the store id
    base_url: str | None  # None: the official API (ORDERDESK_API_BASE_URL)
    make_default: bool
    api_key: str = field(repr=False)


def _field(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_api_key(form: Mapping[str, str], kept: Mapping[str, str]) -> str:
    api_key = _field(form, "api_key")
    if not api_key:
        raise StoreFormError(API_KEY_MISSING, kept)
    if len(api_key) > MAX_API_KEY_CHARS:
        raise StoreFormError(API_KEY_MALFORMED, kept)
    try:
        return validate_store_api_key(api_key)
    except TenancyError:
        raise StoreFormError(API_KEY_MALFORMED, kept) from None


def _base_url(
    form: Mapping[str, str], offered: tuple[str, ...], kept: dict[str, str]
) -> str | None:
    chosen = _field(form, "base_url").rstrip("/")
    if not chosen or chosen == offered[0]:
        return None  # the official API: the store follows the operator's setting
    if chosen not in offered:
        kept["base_url"] = ""
        raise StoreFormError(BASE_URL_NOT_OFFERED, kept)
    return chosen


def read_new_store(form: Mapping[str, str], offered_base_urls: tuple[str, ...]) -> NewStore:
    """The add-store form's values, or StoreFormError; `offered_base_urls` lists the API
    base URLs on offer, the official one first (Settings.store_base_urls)."""
    store_id = _field(form, "store_id")[: MAX_STORE_ID_CHARS + 1]
    alias = _field(form, "alias")[: MAX_ALIAS_CHARS + 1]
    kept = {
        "store_id": store_id,
        "alias": alias,
        "base_url": _field(form, "base_url")[:300],
        "default": "on" if _field(form, "default") else "",
    }
    try:
        validate_store_id(store_id)
        if alias:
            validate_alias(alias)
    except TenancyError as problem:
        raise StoreFormError(sentence(problem), kept) from None
    base_url = _base_url(form, offered_base_urls, kept)
    return NewStore(
        store_id=store_id,
        alias=alias or None,
        base_url=base_url,
        make_default=bool(kept["default"]),
        api_key=read_api_key(form, kept),
    )
