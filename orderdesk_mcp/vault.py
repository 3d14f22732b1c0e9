"""The vault: the master key, per-tenant keys, and sealing of Order Desk API keys.

- The 32-byte master key comes from ORDERDESK_MCP_MASTER_KEY (base64), a key file
  (ORDERDESK_MCP_MASTER_KEY_FILE, systemd's $CREDENTIALS_DIRECTORY/master-key, or the dev
  default <data dir>/master.key), in that order.
- Each tenant's key is derived from the master key with BLAKE2b (keyed, per-tenant salt).
- Store API keys are sealed with XChaCha20-Poly1305; the associated data names the tenant and
  the store row, so a ciphertext copied to another row or tenant does not open.
- A canary (a constant sealed under a key derived with a fixed salt) lets start-up tell a
  wrong master key before any tool call needs a store key (see vault_canary.py).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils

from orderdesk_mcp.config import Settings

MASTER_KEY_BYTES = 32
KDF_SALT_BYTES = nacl.hash.BLAKE2B_SALTBYTES
_KDF_PERSON = b"odmcp-tenant-v1"[: nacl.hash.BLAKE2B_PERSONALBYTES]
_SEAL_VERSION = b"\x01"
_NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
# The canary's key derivation salt and associated data: fixed, and unlike any tenant's
# (tenant salts are random), so a canary never opens as a store key or the other way round.
_CANARY_SALT = b"odmcp-canary-v1!"[:KDF_SALT_BYTES]
_CANARY_ASSOCIATED_DATA = b"orderdesk-mcp:master-key-canary:v1"
_CANARY_PLAINTEXT = b"orderdesk-mcp master key canary v1"
# The reply cache's credential-tag salt (orderdesk/cache.py): its own personalisation, so it is
# unlike every tenant key and the canary key.
_CACHE_TAG_PERSON = b"odmcp-cachetag1"[: nacl.hash.BLAKE2B_PERSONALBYTES]
_CACHE_TAG_SALT = b"odmcp-cachetag1!"[:KDF_SALT_BYTES]


class VaultError(Exception):
    """The master key is missing or unusable, or a sealed key does not open."""


@dataclass(frozen=True)
class MasterKeySource:
    """Where the master key came from (shown to operators; never the key itself)."""

    kind: str  # "env", "file", "credential", "default-file"
    path: Path | None = None

    def describe(self) -> str:
        if self.kind == "env":
            return "ORDERDESK_MCP_MASTER_KEY"
        return f"{self.kind} {self.path}"


def generate_master_key() -> bytes:
    return nacl.utils.random(MASTER_KEY_BYTES)


def encode_master_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_master_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise VaultError(
            f"{where} is not valid base64; it must hold a base64 32-byte key"
        ) from None
    if len(key) != MASTER_KEY_BYTES:
        raise VaultError(f"{where} holds {len(key)} bytes; the master key must be 32 bytes")
    return key


def read_key_file(path: Path) -> bytes:
    """Read a base64 key file, refusing one that group or others can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise VaultError(f"cannot read master key file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise VaultError(
            f"master key file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise VaultError(f"cannot read master key file {path}") from None
    return decode_master_key(text, f"master key file {path}")


def write_key_file(path: Path, key: bytes) -> None:
    """Create a key file with mode 0600; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(encode_master_key(key) + "\n")


def find_master_key_source(settings: Settings) -> MasterKeySource | None:
    """The configured source of the master key, or None when nothing is configured."""
    if settings.master_key is not None:
        return MasterKeySource("env")
    if settings.master_key_file is not None:
        return MasterKeySource("file", settings.master_key_file)
    if settings.credentials_directory is not None:
        candidate = settings.credentials_directory / "master-key"
        if candidate.exists():
            return MasterKeySource("credential", candidate)
    if settings.default_master_key_path.exists():
        return MasterKeySource("default-file", settings.default_master_key_path)
    return None


def load_master_key(settings: Settings) -> tuple[bytes, MasterKeySource]:
    source = find_master_key_source(settings)
    if source is None:
        raise VaultError(
            "no master key configured: set ORDERDESK_MCP_MASTER_KEY_FILE (or the systemd "
            "credential master-key), or run `orderdesk-mcp init` to create one in the data dir"
        )
    if source.kind == "env":
        assert settings.master_key is not None
        return decode_master_key(settings.master_key.reveal(), "ORDERDESK_MCP_MASTER_KEY"), source
    assert source.path is not None
    return read_key_file(source.path), source


def store_associated_data(tenant_id: int, store_row_id: int) -> bytes:
    return f"orderdesk-mcp:store-key:v1:tenant={tenant_id}:store={store_row_id}".encode()


class Vault:
    """Seals and opens store API keys with keys derived from one master key."""

    def __init__(self, master_key: bytes, source: MasterKeySource | None = None) -> None:
        if len(master_key) != MASTER_KEY_BYTES:
            raise VaultError("the master key must be 32 bytes")
        self._master_key = master_key
        self.source = source

    def __repr__(self) -> str:
        return f"Vault(source={self.source.describe() if self.source else 'memory'})"

    @classmethod
    def from_settings(cls, settings: Settings) -> Vault:
        key, source = load_master_key(settings)
        return cls(key, source)

    @staticmethod
    def new_tenant_salt() -> bytes:
        return nacl.utils.random(KDF_SALT_BYTES)

    def tenant_key(self, salt: bytes) -> bytes:
        return self._derive(salt, _KDF_PERSON)

    def cache_tag_salt(self) -> bytes:
        """The salt of the reply cache's credential tags: the same in every process and host
        holding this master key (so they share cache entries), useless for opening anything."""
        return self._derive(_CACHE_TAG_SALT, _CACHE_TAG_PERSON)

    def _derive(self, salt: bytes, person: bytes) -> bytes:
        """A 32-byte key from the master key: keyed BLAKE2b, one personalisation per use."""
        return nacl.hash.blake2b(
            b"",
            digest_size=32,
            key=self._master_key,
            salt=salt,
            person=person,
            encoder=nacl.encoding.RawEncoder,
        )

    def seal(
        self, plaintext: str, *, tenant_salt: bytes, tenant_id: int, store_row_id: int
    ) -> bytes:
        nonce = nacl.utils.random(_NONCE_BYTES)
        ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext.encode("utf-8"),
            store_associated_data(tenant_id, store_row_id),
            nonce,
            self.tenant_key(tenant_salt),
        )
        return _SEAL_VERSION + nonce + ciphertext

    def open(self, sealed: bytes, *, tenant_salt: bytes, tenant_id: int, store_row_id: int) -> str:
        sealed = bytes(sealed)
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _SEAL_VERSION:
            raise VaultError(f"the stored API key of store row {store_row_id} is malformed")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[1 + _NONCE_BYTES :],
                store_associated_data(tenant_id, store_row_id),
                nonce,
                self.tenant_key(tenant_salt),
            )
        except nacl.exceptions.CryptoError:
            raise VaultError(
                f"the stored API key of store row {store_row_id} does not open: wrong master key, "
                "or the data was altered or copied from another store"
            ) from None
        return bytes(plaintext).decode("utf-8")

    def seal_canary(self) -> bytes:
        """The canary sealed under this master key (a fresh nonce each time)."""
        nonce = nacl.utils.random(_NONCE_BYTES)
        ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            _CANARY_PLAINTEXT, _CANARY_ASSOCIATED_DATA, nonce, self.tenant_key(_CANARY_SALT)
        )
        return _SEAL_VERSION + nonce + ciphertext

    def opens_canary(self, sealed: bytes) -> bool:
        """True when `sealed` is a canary sealed under this master key."""
        sealed = bytes(sealed)
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _SEAL_VERSION:
            return False
        try:
            plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[1 + _NONCE_BYTES :],
                _CANARY_ASSOCIATED_DATA,
                sealed[1 : 1 + _NONCE_BYTES],
                self.tenant_key(_CANARY_SALT),
            )
        except nacl.exceptions.CryptoError:
            return False
        # The AEAD tag already proves the key; the constant-time compare is belt and braces.
        return hmac.compare_digest(bytes(plaintext), _CANARY_PLAINTEXT)
