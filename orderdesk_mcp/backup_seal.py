"""Sealing backup archives to the operator's backup public key, so the server can write
off-site copies it cannot read back; only the private key (kept off the server) opens them.

An archive can be tens of MB and `nacl.public.SealedBox` is one-shot, so a sealed file is a
libsodium secretstream (XChaCha20-Poly1305, in chunks) under a random file key, and only that
file key is sealed to the public key. Format version 1, all integers big-endian:

    magic        13 bytes  b"odmcp-sealed\\x00"
    version       1 byte   0x01
    key id        8 bytes  BLAKE2b-64 of the recipient public key (names the key; not secret)
    sealed key   80 bytes  SealedBox(public key).encrypt(32-byte file key)
    stream head  24 bytes  secretstream header
    chunks               4-byte ciphertext length, then ciphertext of up to 1 MiB of the
                         archive; every chunk's associated data is all the bytes above;
                         the last chunk carries TAG_FINAL

The stream's tags make reordered, dropped or truncated chunks fail, and nothing may follow
the final chunk. Sealing never needs the private key; opening always does.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from pathlib import Path
from typing import IO

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
from nacl.public import PrivateKey, PublicKey, SealedBox

from orderdesk_mcp.backup import BackupError

MAGIC = b"odmcp-sealed\x00"
FORMAT_VERSION = 1
SEALED_SUFFIX = ".sealed"
CHUNK_BYTES = 1 << 20
KEY_ID_BYTES = 8
_FILE_KEY_BYTES = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
# A SealedBox adds an ephemeral public key and a MAC (SEALBYTES) to what it seals.
_SEALED_KEY_BYTES = _FILE_KEY_BYTES + sodium.crypto_box_SEALBYTES
_STREAM_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_PREFIX = MAGIC + bytes([FORMAT_VERSION])
_HEADER_BYTES = len(_PREFIX) + KEY_ID_BYTES + _SEALED_KEY_BYTES + _STREAM_HEADER_BYTES


class SealError(BackupError):
    """A key is unusable, or a sealed archive does not open; the message says what to do."""


# --- keys -------------------------------------------------------------------------------


def key_id(public_key: PublicKey) -> str:
    """A short public name of a backup key pair (shown to operators to match archive and key)."""
    return nacl.hash.blake2b(
        bytes(public_key), digest_size=KEY_ID_BYTES, encoder=nacl.encoding.HexEncoder
    ).decode("ascii")


def encode_key(key: PublicKey | PrivateKey) -> str:
    return base64.b64encode(bytes(key)).decode("ascii")


def public_key_from_setting(value: str) -> PublicKey:
    """ORDERDESK_MCP_BACKUP_PUBLIC_KEY (already checked by config) as a key."""
    return PublicKey(base64.b64decode(value, validate=True))


def write_private_key_file(path: Path, private_key: PrivateKey) -> None:
    """Create `path` with mode 0600 holding the base64 private key; never overwrite a file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SealError(
            f"{path} already exists; choose another --out (an existing key is never overwritten)"
        ) from None
    except OSError as exc:
        raise SealError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_key(private_key) + "\n")


def read_private_key_file(path: Path) -> PrivateKey:
    """The backup private key from a file `backup keygen` wrote; refused if others can read it."""
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise SealError(
            f"cannot read the backup key file {path}; pass the private key file "
            "`orderdesk-mcp backup keygen` wrote"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SealError(
            f"backup key file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != PrivateKey.SIZE:
        raise SealError(
            f"backup key file {path} does not hold a base64 32-byte private key; pass the file "
            "`orderdesk-mcp backup keygen` wrote"
        )
    return PrivateKey(raw)


# --- sealing ----------------------------------------------------------------------------


def is_sealed(path: Path) -> bool:
    """Whether `path` starts like a sealed archive (by content, never by name)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def sealed_key_id(path: Path) -> str:
    """The key id a sealed archive names (which backup key pair opens it)."""
    with path.open("rb") as handle:
        prefix = handle.read(len(_PREFIX) + KEY_ID_BYTES)
    _check_prefix(prefix, path)
    return prefix[len(_PREFIX) :].hex()


def seal_file(source: Path, target: Path, public_key: PublicKey) -> None:
    """Write `source` sealed to `public_key` as `target` (created 0600, never overwritten)."""
    file_key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, file_key)
    header = (
        _PREFIX
        + bytes.fromhex(key_id(public_key))
        + SealedBox(public_key).encrypt(file_key)
        + stream_header
    )
    assert len(header) == _HEADER_BYTES
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with source.open("rb") as plain, os.fdopen(fd, "wb") as out:
        out.write(header)
        block = plain.read(CHUNK_BYTES)
        while True:
            following = plain.read(CHUNK_BYTES)
            tag = _TAG_FINAL if not following else _TAG_MESSAGE
            chunk = sodium.crypto_secretstream_xchacha20poly1305_push(state, block, header, tag)
            out.write(len(chunk).to_bytes(4, "big") + chunk)
            if not following:
                break
            block = following
        out.flush()
        os.fsync(out.fileno())


def unseal_file(source: Path, target: Path, private_key: PrivateKey) -> None:
    """Open a sealed archive into `target` (0600); SealError, and no `target`, if it won't."""
    try:
        with source.open("rb") as sealed:
            header = sealed.read(_HEADER_BYTES)
            file_key = _open_file_key(header, source, private_key)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    _pull_chunks(sealed, out, file_key, header, source)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise SealError(f"cannot read {source}: {exc.strerror}") from None


def _check_prefix(prefix: bytes, path: Path) -> None:
    if not prefix.startswith(MAGIC):
        raise SealError(f"{path} is not a sealed orderdesk-mcp backup")
    version = prefix[len(MAGIC)] if len(prefix) > len(MAGIC) else None
    if version != FORMAT_VERSION or len(prefix) < len(_PREFIX) + KEY_ID_BYTES:
        raise SealError(
            f"{path} is sealed in format {version}; this release reads format {FORMAT_VERSION}"
        )


def _open_file_key(header: bytes, path: Path, private_key: PrivateKey) -> bytes:
    _check_prefix(header, path)
    if len(header) < _HEADER_BYTES:
        raise SealError(f"{path} is truncated (its header is incomplete); fetch it again")
    archive_key = header[len(_PREFIX) : len(_PREFIX) + KEY_ID_BYTES]
    ours = bytes.fromhex(key_id(private_key.public_key))
    if not hmac.compare_digest(archive_key, ours):
        raise SealError(
            f"{path} is sealed to backup key {archive_key.hex()}, but the key file given is key "
            f"{ours.hex()}; pass the private key whose public key was "
            "ORDERDESK_MCP_BACKUP_PUBLIC_KEY when the backup was made"
        )
    start = len(_PREFIX) + KEY_ID_BYTES
    try:
        return SealedBox(private_key).decrypt(header[start : start + _SEALED_KEY_BYTES])
    except nacl.exceptions.CryptoError:
        raise SealError(
            f"{path} does not open with this backup key (its sealed file key is damaged or "
            "altered); use another copy"
        ) from None


def _pull_chunks(
    sealed: IO[bytes], out: IO[bytes], file_key: bytes, header: bytes, path: Path
) -> None:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(
        state, header[-_STREAM_HEADER_BYTES:], file_key
    )
    damaged = (
        f"{path} is damaged or was altered after it was sealed; fetch it again or use another copy"
    )
    while True:
        length_bytes = sealed.read(4)
        if len(length_bytes) < 4:
            raise SealError(f"{path} is truncated (it ends before its final chunk); fetch it again")
        length = int.from_bytes(length_bytes, "big")
        if not _ABYTES <= length <= CHUNK_BYTES + _ABYTES:
            raise SealError(damaged)
        chunk = sealed.read(length)
        if len(chunk) < length:
            raise SealError(f"{path} is truncated (it ends inside a chunk); fetch it again")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, header)
        except nacl.exceptions.CryptoError:
            raise SealError(damaged) from None
        out.write(plain)
        if tag == _TAG_FINAL:
            break
    if sealed.read(1):
        raise SealError(f"{path} has data after its final chunk (altered); use another copy")
