"""The HTTP cache of Order Desk replies: keys, lifetimes, invalidation, sessions.

Only successful GET replies are cached, in one SQLite file shared by every thread (and by
every serve process on the host). A cache key is readable and ordered so that invalidation is
an indexed range delete::

    <store id>|<base URL><resource path>?<digest of the sorted query>|<credential tag>[|<version>]

for example ``100001|https://app.orderdesk.me/api/v2/orders/42?e3b0c442...|9f2c...``. The
store id comes from the request's ``ORDERDESK-STORE-ID`` header, so two stores never share an
entry. The ``ORDERDESK-API-KEY`` header is an ignored parameter, so requests-cache redacts it
before anything is written. Invalidation deletes by prefix, so a write clears the entries of
every credential of that store.

The credential tag is an HMAC of store id and API key, truncated to 128 bits, so someone who
registered the right store id with a wrong key is never served the owner's replies. Its
salt is derived from the master key (``Vault.cache_tag_salt``), so every process and host of a
server group computes the same tags and finds each other's entries; without a vault (local
mode, a bare ``UpstreamMachinery``) it is random per process. Nothing in a stolen cache file
can confirm a guessed API key: checking a guess means computing its tag, which needs the salt,
which needs the master key, and whoever holds the master key can already open every stored
API key in the database. The salt never leaves memory and differs from every vault key
(another BLAKE2b personalisation), so the tags tell nothing about the master key either.

``<version>`` is present only in a server group (ORDERDESK_MCP_REDIS_URL set): the store's
cache version in Redis (``generations.py``). A write anywhere in the group gives the store a
new version before it returns, which makes every entry filed under the old one, in every
process's memory and every host's file, unreachable at once; they expire unread.

Rows are JSON (requests-cache's ``json`` serializer, bodies in base64), never pickles: whoever
can write the file can make us serve wrong replies until they expire, but not run code. The
file's ``PRAGMA user_version`` says so (``CACHE_FORMAT``); a file without it was written by an
earlier version with requests-cache's default pickle serializer and is emptied, unread, when
opened (``drop_pickled_cache``). A pickled row that still appears (written by an old process
during an upgrade) fails to decode as JSON and is a miss.

Each process keeps recent entries in memory too, under the same keys (``memory.py``): a write
clears them there at once; a write of another process only when their few seconds run out,
unless the group shares versions through Redis (then at once, as above).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from requests import PreparedRequest, Request, Response
from requests.structures import CaseInsensitiveDict
from requests_cache import CachedSession
from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.models.response import CachedResponse
from requests_cache.policy.expiration import DO_NOT_CACHE
from requests_cache.serializers import SerializerPipeline, json_serializer
from urllib3 import HTTPResponse

log = logging.getLogger(__name__)

STORE_ID_HEADER = "ORDERDESK-STORE-ID"
API_KEY_HEADER = "ORDERDESK-API-KEY"

SERIALIZER: SerializerPipeline = json_serializer
"""How cached replies are written: requests-cache's stdlib-JSON serializer (never pickle)."""

CACHE_FORMAT = 2
"""``PRAGMA user_version`` of a cache file whose rows are written by ``SERIALIZER``. Files of any
other version (0: every file written before this existed, with pickled rows) are emptied."""

_CACHE_TABLES = ("responses", "redirects")  # the tables requests-cache's SQLiteCache creates

# requests-cache's SQLite backend puts keys into SQL text on reads, so a key may only hold
# characters that cannot end a string literal. Ids are validated digits and the base URL is
# checked by the client, so the fallback below is a seatbelt, not a path we expect.
_SAFE_KEY = re.compile(r"[A-Za-z0-9._~:/%|?@\[\]+=,;!$*()-]+")


@dataclass(frozen=True)
class CacheTTLs:
    """Seconds a cached reply stays fresh, per kind of resource; 0 turns caching off for it."""

    store: int = 300
    orders: int = 30
    inventory: int = 30

    def for_endpoint(self, endpoint: str) -> int:
        """Lifetime for an endpoint template such as ``/orders/{id}``; 0: never cached."""
        if endpoint == "/store":
            return self.store
        if endpoint.startswith("/orders"):
            return self.orders
        if endpoint.startswith("/inventory-items"):
            return self.inventory
        return 0  # /test must always reach Order Desk: it is the credential check


def cache_key(store_id: str, url: str, credential_tag: str = "", version: str = "") -> str:
    """The cache key of a GET of ``url`` (query included) for ``store_id``; ``version`` is the
    store's cache version in a server group ("" outside one)."""
    address, _, query = url.partition("?")
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    digest = hashlib.sha256(urlencode(pairs).encode("utf-8")).hexdigest()[:32]
    key = f"{store_id}|{address}?{digest}|{credential_tag}"
    if version:
        key += f"|{version}"
    if _SAFE_KEY.fullmatch(key):
        return key
    return "unsafe|" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _header_text(request: PreparedRequest, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode("latin-1") if isinstance(value, bytes) else value


def record_prefixes(store_id: str, address: str) -> tuple[str, ...]:
    """Key prefixes of a record at ``address`` (no query) and of everything below it."""
    return (f"{store_id}|{address}?", f"{store_id}|{address}/")


def listing_prefixes(store_id: str, address: str) -> tuple[str, ...]:
    """Key prefixes of every query of the list at ``address`` (but not its records)."""
    return (f"{store_id}|{address}?",)


def is_cacheable_reply(response: Response) -> bool:
    """requests-cache ``filter_fn``: only 200 replies whose envelope is not an error."""
    return is_cacheable_body(response.status_code, response.content)


def is_cacheable_body(status: int | None, content: bytes) -> bool:
    """Whether a reply with this status and body may be cached (see is_cacheable_reply)."""
    if status != 200:
        return False
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and body.get("status") != "error"


class ResponseCache:
    """The SQLite file of cached replies, shared by every thread and every store."""

    def __init__(self, path: Path, tag_salt: bytes | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Cached replies hold customers' names and addresses: readable by us only.
        path.touch(mode=0o600, exist_ok=True)
        self.path = path
        drop_pickled_cache(path)  # before requests-cache reads anything from it
        self.backend = SQLiteCache(str(path), serializer=SERIALIZER, wal=True, busy_timeout=10_000)
        # Without a salt from the master key, one per process: entries of other processes
        # can then not be found, only expire.
        self._salt = tag_salt if tag_salt is not None else secrets.token_bytes(32)
        self.prune_expired()

    def credential_tag(self, store_id: str, api_key: str) -> str:
        """Names one (store id, API key) pair in cache keys without revealing the key."""
        message = f"{store_id}\0{api_key}".encode()
        return hmac.new(self._salt, message, hashlib.sha256).hexdigest()[:32]

    def key_for(self, store_id: str, api_key: str, url: str, version: str = "") -> str:
        """The cache key of a GET of ``url`` made with these credentials, under the store's
        cache ``version`` (server groups only)."""
        return cache_key(store_id, url, self.credential_tag(store_id, api_key), version)

    def request_key(self, request: PreparedRequest, **_settings: Any) -> str:
        """requests-cache ``key_fn``: the key of a prepared request (see ``key_for``)."""
        store_id = _header_text(request, STORE_ID_HEADER)
        api_key = _header_text(request, API_KEY_HEADER)
        return self.key_for(store_id, api_key, request.url or "")

    def new_session(self) -> CachedSession:
        """A CachedSession over the shared backend; give each thread its own."""
        return CachedSession(
            backend=self.backend,
            expire_after=DO_NOT_CACHE,  # every cached GET passes its own lifetime
            allowable_methods=("GET",),
            allowable_codes=(200,),
            # requests-cache compares names case-sensitively: list the spellings we might send.
            ignored_parameters=(API_KEY_HEADER, API_KEY_HEADER.lower(), API_KEY_HEADER.title()),
            key_fn=self.request_key,
            filter_fn=is_cacheable_reply,
            autoclose=False,  # the backend outlives any one session
        )

    def fresh_entry(self, key: str) -> CachedResponse | None:
        """The cached reply under ``key`` if it exists and has not expired.

        A row that does not decode is a miss (requests-cache returns None for rows that are not
        JSON, such as a pickle, and we catch the validation errors of JSON that is not a reply);
        the reply fetched next overwrites it."""
        try:
            response = self.backend.get_response(key)
        except sqlite3.Error:
            raise
        except Exception:  # cattrs' ClassValidationError is an ExceptionGroup of anything
            log.warning("a cached reply could not be decoded; treated as a miss", exc_info=True)
            return None
        if not isinstance(response, CachedResponse) or response.is_expired:
            return None
        return response

    def store_replies(
        self, replies: Iterable[tuple[str, str, bytes]], ttl: int, headers: Mapping[str, str]
    ) -> None:
        """Cache each ``(key, url, body)`` as a 200 JSON reply to a GET of ``url`` for ``ttl``
        seconds, as if fetched with ``headers`` (the API key among them is redacted, as
        always), in one SQLite commit (a list page stores one entry per order)."""
        # Redacted here too, so that no API key is stored even before any session has given
        # the backend its ignored parameters.
        stored = {
            name: "REDACTED" if name.lower() == API_KEY_HEADER.lower() else value
            for name, value in headers.items()
        }
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
        with self.backend.responses.bulk_commit():
            for key, url, body in replies:
                self.backend.save_response(
                    _json_response(url, body, stored), cache_key=key, expires=expires
                )

    def store_reply(
        self, key: str, url: str, body: bytes, ttl: int, headers: Mapping[str, str]
    ) -> None:
        """One reply, as store_replies."""
        self.store_replies([(key, url, body)], ttl, headers)

    def delete_prefixes(self, prefixes: Iterable[str]) -> int:
        """Delete every entry whose key starts with one of ``prefixes``; return how many."""
        ranges = [(prefix, _just_after(prefix)) for prefix in dict.fromkeys(prefixes) if prefix]
        if not ranges:
            return 0
        responses = self.backend.responses
        deleted = 0
        # An indexed range on the primary key: cost grows with the entries deleted, not the file.
        with responses.connection(commit=True) as con:
            for low, high in ranges:
                cursor = con.execute(
                    f"DELETE FROM {responses.table_name} WHERE key >= ? AND key < ?",  # noqa: S608
                    (low, high),
                )
                deleted += max(cursor.rowcount, 0)
        return deleted

    def prune_expired(self) -> int:
        """Delete every expired entry (indexed on the expiry column); return how many."""
        responses = self.backend.responses
        with responses.connection(commit=True) as con:
            cursor = con.execute(
                f"DELETE FROM {responses.table_name} WHERE expires <= ?",  # noqa: S608
                (round(time.time()),),
            )
        return max(cursor.rowcount, 0)

    def count(self) -> int:
        return int(self.backend.responses.count())

    def close(self) -> None:
        close_connections: Callable[[], None] = self.backend.close  # untyped upstream
        close_connections()


def drop_pickled_cache(path: Path) -> bool:
    """Empty the cache file at ``path`` unless it is marked as ``CACHE_FORMAT``; mark it.

    Nothing is read from the rows: the tables are dropped (and the file vacuumed, so the old
    bytes leave it) whatever they hold. Returns whether there was anything to drop. The check
    and the drop are one write transaction, so processes starting together drop it once.
    """
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        (version,) = con.execute("PRAGMA user_version").fetchone()
        if version == CACHE_FORMAT:
            con.execute("COMMIT")
            return False
        marks = ",".join("?" * len(_CACHE_TABLES))
        tables = [
            name
            for (name,) in con.execute(
                f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",  # noqa: S608
                _CACHE_TABLES,
            )
        ]
        entries = 0
        for table in tables:  # names from _CACHE_TABLES, not from the file
            (rows,) = con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
            entries += rows
            con.execute(f"DROP TABLE {table}")
        con.execute(f"PRAGMA user_version = {CACHE_FORMAT}")
        con.execute("COMMIT")
        if not tables:
            return False  # a new file
        # Fails while another process reads the file: the old pages then stay free, unread.
        with contextlib.suppress(sqlite3.OperationalError):
            con.execute("VACUUM")
        log.info(
            "dropped the reply cache %s (%d entries) unread: its format %d is not %d (JSON); "
            "0 is the pickled cache of earlier versions. It refills from Order Desk",
            path,
            entries,
            version,
            CACHE_FORMAT,
        )
        return True
    finally:
        con.close()


def _just_after(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _json_response(url: str, body: bytes, headers: Mapping[str, str]) -> Response:
    """A read 200 JSON reply to a GET of ``url``, shaped as requests-cache stores one."""
    request = Request("GET", url, headers=dict(headers)).prepare()
    response = Response()
    response.status_code = 200
    response.reason = "OK"
    response.url = url
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
    response._content = body  # where requests keeps a body it has read
    response.request = request
    # requests-cache copies the urllib3 response's metadata; give it one already read.
    response.raw = HTTPResponse(
        body=b"", headers=response.headers, status=200, reason="OK", request_url=url
    )
    return response
