"""Tenant sign-in passwords: Argon2id (PyNaCl's pwhash), never stored or logged in clear."""

from __future__ import annotations

import nacl.exceptions
import nacl.pwhash

MIN_LENGTH = 12
MAX_LENGTH = 1024
# Interactive limits: about 0.1 s and 64 MiB per check on a small VPS.
_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Verified when the tenant is unknown or has no password, so a miss costs what a hit costs.
_DUMMY_HASH: bytes | None = None


class PasswordError(ValueError):
    """A password that cannot be set (too short, too long); the message says what to do."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"the password must be at most {MAX_LENGTH} characters long")


def hash_password(password: str) -> str:
    check_new_password(password)
    return nacl.pwhash.argon2id.str(
        password.encode("utf-8"), opslimit=_OPSLIMIT, memlimit=_MEMLIMIT
    ).decode("ascii")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; always does one Argon2id verification."""
    global _DUMMY_HASH
    candidate = password.encode("utf-8")[: MAX_LENGTH * 4]
    if stored_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = nacl.pwhash.argon2id.str(
                b"orderdesk-mcp-dummy", opslimit=_OPSLIMIT, memlimit=_MEMLIMIT
            )
        stored = _DUMMY_HASH
    else:
        stored = stored_hash.encode("ascii")
    try:
        matched = nacl.pwhash.verify(stored, candidate)
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        matched = False
    return matched and stored_hash is not None
