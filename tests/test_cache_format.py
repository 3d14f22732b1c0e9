"""The reply cache's file format: JSON rows, and a pickled cache of an earlier version dropped
unread (issue 10 item 14). Needs no Order Desk."""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
from pathlib import Path

import pytest
from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.models.response import CachedResponse

from orderdesk_mcp.orderdesk.cache import (
    API_KEY_HEADER,
    CACHE_FORMAT,
    STORE_ID_HEADER,
    ResponseCache,
    cache_key,
)

BASE = "https://app.orderdesk.me/api/v2"
SECRET = "sk_live_DO_NOT_LEAK_456"
BODY = json.dumps({"status": "success", "order": {"id": 42, "email": "a@example.com"}}).encode()
HEADERS = {STORE_ID_HEADER: "1", API_KEY_HEADER: SECRET}


class _TouchOnUnpickle:
    """Unpickling what this pickles opens (so creates) ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(_TouchOnUnpickle(marker))


def test_the_malicious_pickle_does_create_its_marker(tmp_path: Path) -> None:
    """The control: unpickling the payload runs code, so its marker's absence below means
    something."""
    marker = tmp_path / "control"
    pickle.loads(_malicious_pickle(marker))  # noqa: S301 - that is the point
    assert marker.exists()


def _old_pickled_cache(path: Path, marker: Path, key: str) -> None:
    """A cache file as earlier versions wrote it (requests-cache's default pickle serializer,
    user_version 0): one genuine pickled reply and, under ``key``, a malicious pickle."""
    old = SQLiteCache(str(path), wal=True)  # no serializer: requests-cache's pickle default
    assert old.responses.serializer.name == "pickle"
    old.responses["genuine"] = CachedResponse(status_code=200, content=BODY)
    with old.responses.connection(commit=True) as con:
        con.execute(
            "INSERT INTO responses (key, value, expires) VALUES (?, ?, ?)",
            (key, sqlite3.Binary(_malicious_pickle(marker)), 2**31 - 1),
        )
        (version,) = con.execute("PRAGMA user_version").fetchone()
    assert version == 0
    old.close()


def _rows(path: Path) -> list[tuple[str, bytes | str]]:
    con = sqlite3.connect(path)
    try:
        return list(con.execute("SELECT key, value FROM responses"))
    finally:
        con.close()


def _user_version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def test_an_old_pickled_cache_is_dropped_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "http-cache.sqlite"
    marker = tmp_path / "pwned"
    key = cache_key("1", f"{BASE}/orders/42")
    _old_pickled_cache(path, marker, key)
    assert len(_rows(path)) == 2
    assert not marker.exists()

    with caplog.at_level(logging.INFO, logger="orderdesk_mcp.orderdesk.cache"):
        cache = ResponseCache(path)
    try:
        dropped = [r for r in caplog.records if "dropped the reply cache" in r.getMessage()]
        assert len(dropped) == 1
        assert dropped[0].levelno == logging.INFO
        assert "2 entries" in dropped[0].getMessage()
        assert cache.count() == 0
        assert cache.fresh_entry(key) is None
        assert cache.fresh_entry("genuine") is None
        assert _user_version(path) == CACHE_FORMAT
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name != "pwned")
        assert marker.name.encode() not in raw  # vacuumed: the payload's bytes left the files
    finally:
        cache.close()
    assert not marker.exists()


def test_a_pickled_row_written_after_the_upgrade_is_a_miss_never_unpickled(
    tmp_path: Path,
) -> None:
    """An old process still running during an upgrade may write a pickle into the new file."""
    path = tmp_path / "http-cache.sqlite"
    marker = tmp_path / "pwned"
    cache = ResponseCache(path)
    try:
        key = cache.key_for("1", SECRET, f"{BASE}/orders/42")
        with cache.backend.responses.connection(commit=True) as con:
            con.execute(
                "INSERT INTO responses (key, value, expires) VALUES (?, ?, ?)",
                (key, sqlite3.Binary(_malicious_pickle(marker)), 2**31 - 1),
            )
        assert cache.fresh_entry(key) is None
        # The session path of requests-cache reads through the same serializer.
        assert cache.backend.get_response(key) is None
        cache.store_reply(key, f"{BASE}/orders/42", BODY, 60, HEADERS)  # overwrites it
        entry = cache.fresh_entry(key)
        assert entry is not None
        assert entry.content == BODY
    finally:
        cache.close()
    assert not marker.exists()


def test_rows_are_json_without_pickle_opcodes_or_the_api_key(tmp_path: Path) -> None:
    path = tmp_path / "http-cache.sqlite"
    cache = ResponseCache(path)
    try:
        key = cache.key_for("1", SECRET, f"{BASE}/orders/42")
        cache.store_reply(key, f"{BASE}/orders/42", BODY, 60, HEADERS)
        session = cache.new_session()  # requests-cache's own save path uses it too
        session.close()
        rows = _rows(path)
        assert [k for k, _ in rows] == [key]
        value = rows[0][1]
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        assert text.startswith("{")  # a pickle (protocol 2+) starts with its PROTO opcode 0x80
        stored = json.loads(text)
        assert stored["status_code"] == 200
        assert stored["url"] == f"{BASE}/orders/42"
        assert stored["request"]["headers"][API_KEY_HEADER] == "REDACTED"
        assert SECRET not in text
    finally:
        cache.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in raw


def test_a_json_cache_survives_a_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "http-cache.sqlite"
    first = ResponseCache(path)
    key = first.key_for("1", SECRET, f"{BASE}/orders/42")
    first.store_reply(key, f"{BASE}/orders/42", BODY, 60, HEADERS)
    first.close()
    with caplog.at_level(logging.INFO, logger="orderdesk_mcp.orderdesk.cache"):
        second = ResponseCache(path)
    try:
        assert not [r for r in caplog.records if "dropped" in r.getMessage()]
        assert second.count() == 1
        entry = second.fresh_entry(key)  # the same key still names the same row
        assert entry is not None
        assert entry.content == BODY
        assert entry.status_code == 200
        assert not entry.is_expired
    finally:
        second.close()


def test_a_new_file_is_marked_without_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sub" / "http-cache.sqlite"
    with caplog.at_level(logging.INFO, logger="orderdesk_mcp.orderdesk.cache"):
        cache = ResponseCache(path)
    cache.close()
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]
    assert _user_version(path) == CACHE_FORMAT
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "value",
    [b"\x80\x04garbage", "not json", "[]", "null", '{"status_code": "x"}', '{"expires": "no"}'],
)
def test_a_row_that_is_not_a_json_reply_is_a_miss(tmp_path: Path, value: bytes | str) -> None:
    cache = ResponseCache(tmp_path / "http-cache.sqlite")
    try:
        key = cache.key_for("1", SECRET, f"{BASE}/orders/42")
        with cache.backend.responses.connection(commit=True) as con:
            con.execute(
                "INSERT INTO responses (key, value, expires) VALUES (?, ?, ?)",
                (key, value, 2**31 - 1),
            )
        assert cache.fresh_entry(key) is None
    finally:
        cache.close()
