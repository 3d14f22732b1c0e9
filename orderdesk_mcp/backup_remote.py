"""Off-site copies of sealed backups in S3-compatible object storage (AWS S3, Backblaze B2,
Wasabi, MinIO, ...), through boto3.

Where: ORDERDESK_MCP_BACKUP_S3_URL (s3://bucket/prefix) and, for services other than AWS,
ORDERDESK_MCP_BACKUP_S3_ENDPOINT. Credentials come the standard boto3 way (AWS_* variables,
AWS_SHARED_CREDENTIALS_FILE, e.g. a systemd credential, or ~/.aws), never from our settings;
AWS_MAX_ATTEMPTS and AWS_RETRY_MODE tune botocore's own retries as usual.

Each archive is one object, `<prefix>/<archive name>.sealed`, written with one PUT carrying
Content-MD5 (the service refuses a body that arrived damaged) and its SHA-256 in the object
metadata; after the PUT the object's size and SHA-256 are read back and compared, and a fetch
checks both again. botocore retries each request; on top of that the whole upload is tried
UPLOAD_ATTEMPTS times when the failure may be passing (network, 5xx, a mismatch), and never
when it is not (no credentials, no bucket, access denied). boto3 errors become RemoteError in
one place (`_translated`), without any secret in the message.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from orderdesk_mcp.backup import BackupError
from orderdesk_mcp.backup_seal import SEALED_SUFFIX
from orderdesk_mcp.config import Settings

UPLOAD_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = (2.0, 5.0)
MAX_UPLOAD_BYTES = 5 * 1024**3
"""One PUT holds at most 5 GiB in S3; a backup of this database is far below that."""
DELETE_BATCH = 1000
SHA256_METADATA = "sha256"
_NAME_RE = re.compile(r"^orderdesk-mcp-(\d{8}T\d{6}\.\d{6}Z)\.[A-Za-z0-9][A-Za-z0-9.]*\.sealed$")
_NAME_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_PASSING_CODES = {"BadDigest", "RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable"}


class RemoteError(BackupError):
    """The object storage cannot be used or refused a request; the message says what to do."""


class _Mismatch(Exception):
    """The object read back differs from the file sent."""


@dataclass(frozen=True)
class RemoteArchive:
    name: str  # the object's name under the prefix: <archive name>.sealed
    created: dt.datetime  # naive UTC, from the name
    size: int


def sealed_name(archive_name: str) -> str:
    return archive_name + SEALED_SUFFIX


def created_from_name(name: str) -> dt.datetime | None:
    match = _NAME_RE.fullmatch(name)
    return dt.datetime.strptime(match.group(1), _NAME_TIME_FORMAT) if match else None


def _digests(path: Path) -> tuple[str, str]:
    """(base64 MD5 for Content-MD5, hex SHA-256) of a file."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            md5.update(block)
            sha256.update(block)
    return base64.b64encode(md5.digest()).decode("ascii"), sha256.hexdigest()


def _where(endpoint: str | None) -> str:
    if not endpoint:
        return "AWS S3"
    parsed = urlparse(endpoint)
    # Only scheme, host and port: never userinfo, should someone have put it there.
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.hostname}{port}"


class RemoteBackups:
    """The sealed archives under one s3://bucket/prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str, endpoint: str | None) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self.where = _where(endpoint)

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteBackups:
        if not settings.backup_s3_url:
            raise RemoteError(
                "no off-site storage configured: set ORDERDESK_MCP_BACKUP_S3_URL "
                "(s3://bucket/prefix) and, for a service other than AWS, "
                "ORDERDESK_MCP_BACKUP_S3_ENDPOINT (docs/DEPLOYMENT.md, section 6)"
            )
        parsed = urlparse(settings.backup_s3_url)
        prefix = parsed.path.strip("/")
        config = Config(
            retries={"mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Content-MD5 (below) is the integrity check every S3-compatible service knows;
            # the newer default checksum headers are not understood by all of them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            client = boto3.session.Session().client(
                "s3", endpoint_url=settings.backup_s3_endpoint, config=config
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise RemoteError(f"cannot set up the S3 client: {exc}") from None
        return cls(
            client, parsed.netloc, f"{prefix}/" if prefix else "", settings.backup_s3_endpoint
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} on {self.where}"

    # --- reading ------------------------------------------------------------------------

    def archives(self) -> list[RemoteArchive]:
        """Sealed archives under the prefix (by name), oldest first."""
        found = []
        with self._translated("list the backups"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(self.prefix) :]
                    created = created_from_name(name)
                    if created is not None:
                        found.append(RemoteArchive(name, created, int(item["Size"])))
        return sorted(found, key=lambda archive: (archive.created, archive.name))

    def exists(self, name: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.prefix + name)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._error(exc, f"look for {name}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self._error(exc, f"look for {name}") from None
        return True

    def fetch(self, name: str, dest_dir: Path) -> Path:
        """Download `name` into `dest_dir` (never over an existing file), checking its size and
        SHA-256 against what the upload recorded."""
        if created_from_name(name) is None:
            raise RemoteError(
                f"{name!r} is not the name of a sealed backup; `orderdesk-mcp backup list "
                "--remote` shows the names"
            )
        target = dest_dir / name
        if target.exists():
            raise RemoteError(f"{target} already exists; remove it or pass another --dest")
        dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._translated(f"fetch {name}"):
            reply = self._client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            expected_sha = reply.get("Metadata", {}).get(SHA256_METADATA)
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest_dir) as work:
                partial = Path(work) / name
                digest = hashlib.sha256()
                size = 0
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    for block in reply["Body"].iter_chunks(1 << 20):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
                if size != int(reply["ContentLength"]) or (
                    expected_sha is not None and digest.hexdigest() != expected_sha
                ):
                    raise RemoteError(
                        f"{name} arrived damaged (size or SHA-256 differs from what was "
                        "uploaded); fetch it again"
                    )
                os.replace(partial, target)
        return target

    # --- writing ------------------------------------------------------------------------

    def upload(self, sealed: Path, name: str) -> RemoteArchive:
        """Put `sealed` as `name`, read it back, compare; RemoteError after the bounded tries."""
        created = created_from_name(name)
        if created is None:
            raise RemoteError(f"{name!r} is not the name of a sealed backup")
        size = sealed.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise RemoteError(
                f"{sealed} is {size} bytes, more than one upload takes ({MAX_UPLOAD_BYTES}); "
                "copy it off the machine another way"
            )
        content_md5, sha256 = _digests(sealed)
        last: Exception | None = None
        for attempt in range(UPLOAD_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_SECONDS[min(attempt, len(RETRY_PAUSE_SECONDS)) - 1])
            try:
                self._put_and_check(sealed, name, size, content_md5, sha256)
                return RemoteArchive(name, created, size)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                if not _may_pass(exc):
                    raise self._error(exc, f"upload {name}") from None
                last = exc
            except _Mismatch as exc:
                last = exc
        assert last is not None
        if isinstance(last, _Mismatch):
            raise RemoteError(
                f"{name} did not arrive intact at {self.describe()} after {UPLOAD_ATTEMPTS} "
                f"attempts ({last})"
            )
        error = self._error(last, f"upload {name}")
        raise RemoteError(f"{error} (gave up after {UPLOAD_ATTEMPTS} attempts)")

    def _put_and_check(
        self, sealed: Path, name: str, size: int, content_md5: str, sha256: str
    ) -> None:
        key = self.prefix + name
        with sealed.open("rb") as body:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentMD5=content_md5,
                ContentType="application/octet-stream",
                Metadata={SHA256_METADATA: sha256},
            )
        head = self._client.head_object(Bucket=self.bucket, Key=key)
        if int(head["ContentLength"]) != size:
            raise _Mismatch(f"{head['ContentLength']} bytes stored, {size} sent")
        if head.get("Metadata", {}).get(SHA256_METADATA) != sha256:
            raise _Mismatch("the stored SHA-256 differs from the one sent")

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            with self._translated("delete old backups"):
                reply = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + n} for n in batch], "Quiet": True},
                )
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise RemoteError(
                    f"{len(errors)} old backup(s) could not be deleted from {self.describe()} "
                    f"({first.get('Code')} on {first.get('Key')}); check the credentials' "
                    "s3:DeleteObject permission"
                )

    # --- errors -------------------------------------------------------------------------

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._error(exc, doing) from None

    def _error(self, exc: Exception, doing: str) -> RemoteError:
        where = self.describe()
        if isinstance(
            exc,
            botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError,
        ):
            return RemoteError(
                f"cannot {doing}: no S3 credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE (for the timer, a "
                "systemd credential: docs/DEPLOYMENT.md, section 6)"
            )
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _error_code(exc)
            if code == "NoSuchBucket":
                return RemoteError(
                    f"cannot {doing}: the bucket {self.bucket!r} does not exist at {self.where}; "
                    "create it or fix ORDERDESK_MCP_BACKUP_S3_URL"
                )
            if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}:
                return RemoteError(
                    f"cannot {doing}: {self.where} refused the credentials ({code}); check the "
                    f"access key and its permissions on {where}"
                )
            return RemoteError(f"cannot {doing}: {where} answered {code}")
        if isinstance(
            exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError
        ):
            return RemoteError(
                f"cannot {doing}: {self.where} cannot be reached ({type(exc).__name__}); check "
                "ORDERDESK_MCP_BACKUP_S3_ENDPOINT and the network"
            )
        return RemoteError(f"cannot {doing} on {where} ({type(exc).__name__})")


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


def _may_pass(exc: Exception) -> bool:
    """Whether trying the upload again could help."""
    if isinstance(exc, botocore.exceptions.ClientError):
        # 5xx, timeouts and throttling pass; other 4xx (no bucket, access denied) do not.
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return status >= 500 or status in {408, 429} or _error_code(exc) in _PASSING_CODES
    return isinstance(
        exc, botocore.exceptions.ConnectionError | botocore.exceptions.HTTPClientError
    )
