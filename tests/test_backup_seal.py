"""Sealed archives: only the backup private key opens them, and any damage, truncation,
reordering or addition is refused with a clear message."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from orderdesk_mcp.backup_seal import (
    CHUNK_BYTES,
    MAGIC,
    SealError,
    is_sealed,
    key_id,
    read_private_key_file,
    seal_file,
    sealed_key_id,
    unseal_file,
    write_private_key_file,
)

KEY = PrivateKey.generate()


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "archive.tar.gz"
    # Three full chunks and a partial one, so reordering and truncation have room to happen.
    path.write_bytes(os.urandom(3 * CHUNK_BYTES + 1234))
    return path


def sealed_copy(plain: Path) -> Path:
    target = plain.with_name(plain.name + ".sealed")
    seal_file(plain, target, KEY.public_key)
    return target


@pytest.mark.parametrize("size", [0, 1, CHUNK_BYTES, CHUNK_BYTES + 1])
def test_round_trip_of_any_size(tmp_path: Path, size: int) -> None:
    source = tmp_path / "in"
    source.write_bytes(os.urandom(size))
    sealed = sealed_copy(source)
    assert is_sealed(sealed)
    assert not is_sealed(source)
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert sealed_key_id(sealed) == key_id(KEY.public_key)
    unseal_file(sealed, tmp_path / "out", KEY)
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_the_wrong_key_is_named_and_nothing_is_written(plain: Path, tmp_path: Path) -> None:
    sealed = sealed_copy(plain)
    with pytest.raises(SealError, match=r"sealed to backup key .* but the key file given is"):
        unseal_file(sealed, tmp_path / "out", PrivateKey.generate())
    assert not (tmp_path / "out").exists()


def _altered(sealed: Path, change: str) -> Path:
    body = bytearray(sealed.read_bytes())
    header = len(MAGIC) + 1 + 8 + 80 + 24
    chunk = 4 + CHUNK_BYTES + 17
    if change == "flipped byte":
        body[header + chunk + 100] ^= 0x01
    elif change == "truncated":
        del body[header + 2 * chunk :]
    elif change == "chunks swapped":
        first, second = body[header : header + chunk], body[header + chunk : header + 2 * chunk]
        body[header : header + 2 * chunk] = second + first
    elif change == "appended":
        body += b"more"
    elif change == "sealed key damaged":
        body[len(MAGIC) + 1 + 8 + 40] ^= 0x01
    target = sealed.with_name(f"{change}.sealed")
    target.write_bytes(bytes(body))
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("flipped byte", "damaged or was altered"),
        ("truncated", "truncated"),
        ("chunks swapped", "damaged or was altered"),
        ("appended", "data after its final chunk"),
        ("sealed key damaged", "does not open with this backup key"),
    ],
)
def test_any_change_is_refused(plain: Path, tmp_path: Path, change: str, message: str) -> None:
    altered = _altered(sealed_copy(plain), change)
    with pytest.raises(SealError, match=message):
        unseal_file(altered, tmp_path / "out", KEY)
    assert not (tmp_path / "out").exists()


def test_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "backup.key"
    write_private_key_file(path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes(read_private_key_file(path)) == bytes(KEY)
    with pytest.raises(SealError, match="already exists"):
        write_private_key_file(path, PrivateKey.generate())
    path.chmod(0o644)
    with pytest.raises(SealError, match="chmod 600"):
        read_private_key_file(path)
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    junk.chmod(0o600)
    with pytest.raises(SealError, match="does not hold a base64 32-byte private key"):
        read_private_key_file(junk)
    with pytest.raises(SealError, match="not a sealed orderdesk-mcp backup"):
        unseal_file(junk, tmp_path / "out", KEY)
