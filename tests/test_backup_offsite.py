"""Off-site backups against a real S3-compatible server (moto on loopback): keygen, sealed
upload, list, fetch, restore with the backup private key only, failed uploads, the restore
drill, and no secret in any output."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import boto3
import peewee
import pytest
from click.testing import CliRunner, Result
from nacl.public import PrivateKey

from orderdesk_mcp.backup import backup_name, create_backup, list_backups
from orderdesk_mcp.backup_seal import encode_key, seal_file, write_private_key_file
from orderdesk_mcp.cli import cli
from orderdesk_mcp.config import Settings
from orderdesk_mcp.db.models import Store
from orderdesk_mcp.sandbox import RunningSandbox
from orderdesk_mcp.tenancy import add_store, create_tenant
from orderdesk_mcp.vault import Vault
from tests.conftest import SANDBOX_DEMO_STORE, SANDBOX_KEYS
from tests.s3_server import TEST_SECRET_KEY, S3Server
from tests.test_backup import ROOT, _backup_script_env

# The archives here are of the SQLite file (sealing, upload and retention do not care which
# engine made them); PostgreSQL archives are tested in test_postgres_backup.py.
pytestmark = pytest.mark.sqlite_only


@dataclass
class Offsite:
    """A fresh bucket, the settings naming it, and a backup key pair on disk."""

    bucket: str
    prefix: str
    private_key: PrivateKey
    key_file: Path
    s3: object  # a boto3 S3 client on the test server

    def object_names(self) -> list[str]:
        reply = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)  # type: ignore[attr-defined]
        return sorted(item["Key"][len(self.prefix) :] for item in reply.get("Contents", []))


@pytest.fixture
def offsite(
    s3_server: S3Server, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Offsite:
    for name, value in S3Server.credentials_env().items():
        monkeypatch.setenv(name, value)
    bucket = f"odmcp-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint)
    s3.create_bucket(Bucket=bucket)
    private_key = PrivateKey.generate()
    key_file = tmp_path / "operator" / "backup.key"
    key_file.parent.mkdir()
    write_private_key_file(key_file, private_key)
    monkeypatch.setenv("ORDERDESK_MCP_BACKUP_S3_URL", f"s3://{bucket}/nightly/odmcp")
    monkeypatch.setenv("ORDERDESK_MCP_BACKUP_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("ORDERDESK_MCP_BACKUP_PUBLIC_KEY", encode_key(private_key.public_key))
    monkeypatch.setenv("ORDERDESK_MCP_PORT", "0")  # restore's /health probe finds nobody
    return Offsite(bucket, "nightly/odmcp/", private_key, key_file, s3)


def invoke(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def assert_no_secrets(result: Result, *secrets: str) -> None:
    for secret in (TEST_SECRET_KEY, *secrets):
        assert secret not in result.output
    assert "Traceback" not in result.output


def job_rows(data_dir: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(data_dir / "orderdesk-mcp.db")) as conn:
        return conn.execute("SELECT kind, outcome, detail FROM job_run ORDER BY id").fetchall()


@pytest.fixture
def sandbox_store(db: peewee.Database, vault: Vault, sandbox: RunningSandbox) -> Store:
    tenant = create_tenant("acme", Vault.new_tenant_salt())
    return add_store(
        tenant,
        store_id=SANDBOX_DEMO_STORE,
        api_key=SANDBOX_KEYS[SANDBOX_DEMO_STORE],
        vault=vault,
        alias="demo",
        base_url=sandbox.base_url,
    )


def test_keygen_writes_a_private_key_file_and_prints_only_the_public_key(
    tmp_path: Path,
) -> None:
    out = tmp_path / "odmcp-backup.key"
    made = invoke(tmp_path / "data", "backup", "keygen", "--out", str(out), "--json")
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    private_text = out.read_text().strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert private_text not in made.output
    assert info["env_line"] == f"ORDERDESK_MCP_BACKUP_PUBLIC_KEY={info['public_key']}"
    assert info["private_key_file"] == str(out)

    text = invoke(tmp_path / "data", "backup", "keygen", "--out", str(tmp_path / "second.key"))
    assert "OFF this server" in text.output
    assert "ORDERDESK_MCP_BACKUP_PUBLIC_KEY=" in text.output
    assert (tmp_path / "second.key").read_text().strip() not in text.output

    again = invoke(tmp_path / "data", "backup", "keygen", "--out", str(out))
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert out.read_text().strip() == private_text

    piped = invoke(tmp_path / "data", "backup", "keygen", "--out", "-")
    assert piped.exit_code == 0
    assert len(piped.stdout.strip().splitlines()) == 1  # only the private key on stdout
    assert "ORDERDESK_MCP_BACKUP_PUBLIC_KEY=" in piped.stderr


def test_upload_list_fetch_and_restore_only_with_the_backup_private_key(
    settings: Settings, sandbox_store: Store, offsite: Offsite, tmp_path: Path
) -> None:
    private_text = encode_key(offsite.private_key)
    created = invoke(settings.data_dir, "backup", "create", "--upload", "--json")
    assert created.exit_code == 0, created.output
    assert_no_secrets(created, private_text)
    report = json.loads(created.stdout)
    local = Path(report["path"])
    remote_name = report["upload"]["name"]
    assert remote_name == local.name + ".sealed"
    assert offsite.object_names() == [remote_name]

    listed = invoke(settings.data_dir, "backup", "list", "--remote", "--json")
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.stdout)["backups"]] == [remote_name]
    local_list = json.loads(invoke(settings.data_dir, "backup", "list", "--json").stdout)
    assert [row["name"] for row in local_list["backups"]] == [local.name]

    # On the operator's machine: fetch by the plain archive name, as `backup list` shows it.
    laptop = tmp_path / "laptop"
    fetched = invoke(settings.data_dir, "backup", "fetch", local.name, "--dest", str(laptop))
    assert fetched.exit_code == 0, fetched.output
    sealed = laptop / remote_name
    body = sealed.read_bytes()
    assert b"SQLite format 3" not in body
    assert not body.startswith(b"\x1f\x8b")  # not a readable gzip
    assert SANDBOX_KEYS[SANDBOX_DEMO_STORE].encode() not in body
    again = invoke(settings.data_dir, "backup", "fetch", remote_name, "--dest", str(laptop))
    assert again.exit_code == 1
    assert "already exists" in again.output

    # A new machine: the original master key, an empty data dir.
    fresh = tmp_path / "new-machine"
    fresh.mkdir(mode=0o700)
    shutil.copy2(settings.data_dir / "master.key", fresh / "master.key")

    no_key = invoke(fresh, "backup", "restore", str(sealed))
    assert no_key.exit_code == 1
    assert "sealed to backup key" in no_key.output
    assert "--backup-key-file" in no_key.output

    wrong = tmp_path / "wrong.key"
    write_private_key_file(wrong, PrivateKey.generate())
    wrong_key = invoke(fresh, "backup", "restore", str(sealed), "--backup-key-file", str(wrong))
    assert wrong_key.exit_code == 1
    assert "but the key file given is key" in wrong_key.output
    assert not (fresh / "orderdesk-mcp.db").exists()

    restored = invoke(
        fresh, "backup", "restore", str(sealed), "--backup-key-file", str(offsite.key_file)
    )
    assert restored.exit_code == 0, restored.output
    assert_no_secrets(restored, private_text)
    # The restored server works: the store key opens and Order Desk (the sandbox) accepts it.
    verified = invoke(fresh, "store", "verify", "--tenant", "acme", "demo", "--json")
    assert verified.exit_code == 0, verified.output
    assert SANDBOX_KEYS[SANDBOX_DEMO_STORE] not in verified.output

    kinds = [(kind, outcome) for kind, outcome, _ in job_rows(settings.data_dir)]
    assert kinds == [("backup", "ok"), ("upload", "ok")]


def test_upload_is_refused_without_its_settings(
    settings: Settings, db: peewee.Database, offsite: Offsite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERDESK_MCP_BACKUP_PUBLIC_KEY")
    refused = invoke(settings.data_dir, "backup", "create", "--upload")
    assert refused.exit_code == 1
    assert "ORDERDESK_MCP_BACKUP_PUBLIC_KEY not set" in refused.output
    assert list_backups(settings.backups_dir) == []  # refused before any work

    monkeypatch.delenv("ORDERDESK_MCP_BACKUP_S3_URL")
    skipped = invoke(settings.data_dir, "backup", "upload", "--if-configured")
    assert skipped.exit_code == 0
    assert "not configured" in skipped.output
    listed = invoke(settings.data_dir, "backup", "list", "--remote")
    assert listed.exit_code == 1
    assert "ORDERDESK_MCP_BACKUP_S3_URL" in listed.output


@pytest.mark.parametrize("failure", ["missing bucket", "server unreachable"])
def test_a_failed_upload_exits_non_zero_keeps_the_local_backup_and_is_recorded(
    settings: Settings,
    db: peewee.Database,
    offsite: Offsite,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    if failure == "missing bucket":
        monkeypatch.setenv("ORDERDESK_MCP_BACKUP_S3_URL", "s3://odmcp-no-such-bucket/x")
        expected = "does not exist"
    else:
        # Nothing listens there: every connection is refused.
        from tests.real_servers import free_port

        monkeypatch.setenv("ORDERDESK_MCP_BACKUP_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
        expected = "cannot be reached"
    result = invoke(settings.data_dir, "backup", "create", "--upload")
    assert result.exit_code == 1
    assert expected in result.output
    assert "The local backup" in result.output
    assert "is kept" in result.output
    assert_no_secrets(result, encode_key(offsite.private_key))
    assert len(list_backups(settings.backups_dir)) == 1
    rows = job_rows(settings.data_dir)
    assert [(kind, outcome) for kind, outcome, _ in rows] == [
        ("backup", "ok"),
        ("upload", "failed"),
    ]
    assert expected in rows[-1][2]
    assert TEST_SECRET_KEY not in rows[-1][2]


def test_restore_test_passes_with_the_right_master_key_and_fails_clearly_otherwise(
    settings: Settings, sandbox_store: Store, offsite: Offsite, tmp_path: Path
) -> None:
    created = invoke(settings.data_dir, "backup", "create", "--upload", "--json")
    assert created.exit_code == 0, created.output
    local = Path(json.loads(created.stdout)["path"])

    drill = invoke(settings.data_dir, "backup", "verify", str(local), "--restore-test", "--json")
    assert drill.exit_code == 0, drill.output
    assert json.loads(drill.stdout)["restore_test"]["stores_opened"] == 1

    # The sealed off-site copy, drilled with the backup private key.
    fetched = invoke(settings.data_dir, "backup", "fetch", local.name, "--dest", str(tmp_path))
    assert fetched.exit_code == 0, fetched.output
    sealed_drill = invoke(
        settings.data_dir,
        "backup", "verify", str(tmp_path / (local.name + ".sealed")),
        "--backup-key-file", str(offsite.key_file), "--restore-test",
    )  # fmt: skip
    assert sealed_drill.exit_code == 0, sealed_drill.output
    assert "Restore test passed" in sealed_drill.output

    # Another machine whose master key is not the one the backup's store keys are sealed with.
    other = tmp_path / "other"
    assert invoke(other, "init").exit_code == 0  # its own new master key and database
    failed = invoke(other, "backup", "verify", str(local), "--restore-test")
    assert failed.exit_code == 1
    assert "restore test of" in failed.output
    assert "failed" in failed.output
    assert "master key" in failed.output
    assert_no_secrets(failed, (settings.data_dir / "master.key").read_text().strip())

    assert [(k, o) for k, o, _ in job_rows(settings.data_dir) if k == "restore_test"] == [
        ("restore_test", "ok"),
        ("restore_test", "ok"),
    ]
    assert [(k, o) for k, o, _ in job_rows(other) if k == "restore_test"] == [
        ("restore_test", "failed")
    ]
    # The drill never touched the live database.
    assert not list(settings.data_dir.glob("*.replaced-*"))


def test_upload_of_an_existing_archive_is_idempotent_and_reads_nothing_back(
    settings: Settings, db: peewee.Database, offsite: Offsite
) -> None:
    archive = create_backup(settings, keep=None).path
    first = invoke(settings.data_dir, "backup", "upload", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["upload"]["already_there"] is False
    second = invoke(settings.data_dir, "backup", "upload", str(archive), "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["upload"]["already_there"] is True
    assert offsite.object_names() == [archive.name + ".sealed"]


def test_the_sealed_copy_never_lands_next_to_the_local_backups(
    settings: Settings, db: peewee.Database, offsite: Offsite
) -> None:
    invoke(settings.data_dir, "backup", "create", "--upload")
    names = sorted(os.listdir(settings.backups_dir))
    assert len(names) == 1
    assert names[0].endswith(".tar.gz")


def expected_kept(times: list[dt.datetime], daily: int, weekly: int) -> set[dt.datetime]:
    """The retention rule written out independently: newest per day for the newest `daily`
    days, then newest per ISO week for the newest `weekly` weeks not already covered."""
    newest_of_day: dict[dt.date, dt.datetime] = {}
    newest_of_week: dict[tuple[int, int], dt.datetime] = {}
    for moment in times:
        iso = moment.isocalendar()
        day, week = moment.date(), (iso.year, iso.week)
        newest_of_day[day] = max(newest_of_day.get(day, moment), moment)
        newest_of_week[week] = max(newest_of_week.get(week, moment), moment)
    kept = {newest_of_day[day] for day in sorted(newest_of_day, reverse=True)[:daily]}
    kept.add(max(times))
    weeks = [w for w in sorted(newest_of_week, reverse=True) if newest_of_week[w] not in kept]
    return kept | {newest_of_week[w] for w in weeks[:weekly]}


@pytest.mark.slow
def test_retention_over_120_days_keeps_exactly_the_expected_archives_locally_and_remotely(
    settings: Settings, db: peewee.Database, offsite: Offsite, tmp_path: Path
) -> None:
    template = create_backup(settings, dest=tmp_path / "template", keep=None).path
    sealed_template = tmp_path / "template.sealed"
    seal_file(template, sealed_template, offsite.private_key.public_key)
    today = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    night = today.replace(hour=3, minute=17, second=0, microsecond=0)
    dated = [night - dt.timedelta(days=days) for days in range(1, 122)]
    # A second (later) backup on every fifth day: only the newer one of that day may stay.
    dated += [night - dt.timedelta(days=days, hours=-8) for days in range(1, 122, 5)]
    settings.backups_dir.mkdir(mode=0o700, exist_ok=True)
    for moment in dated:
        name = backup_name(moment)
        shutil.copy2(template, settings.backups_dir / name)
        offsite.s3.put_object(  # type: ignore[attr-defined]
            Bucket=offsite.bucket,
            Key=offsite.prefix + name + ".sealed",
            Body=sealed_template.read_bytes(),
        )

    made = invoke(settings.data_dir, "backup", "create", "--upload", "--json")
    assert made.exit_code == 0, made.output
    new = Path(json.loads(made.stdout)["path"])
    everything = [*dated, created_of(new.name)]

    expected = expected_kept(everything, daily=30, weekly=12)
    assert len(expected) == 42  # 121 days of archives reach past 30 days + 12 weeks
    assert {created_of(path.name) for path in settings.backups_dir.iterdir()} == expected
    remote = {created_of(name.removesuffix(".sealed")) for name in offsite.object_names()}
    assert remote == expected
    oldest = min(expected)
    assert 30 + 11 * 7 <= (today - oldest).days <= 30 + 13 * 7

    # --keep N is a plain count, applied to both sides.
    again = invoke(settings.data_dir, "backup", "create", "--upload", "--keep", "3")
    assert again.exit_code == 0, again.output
    assert len(list_backups(settings.backups_dir)) == 3
    assert len(offsite.object_names()) == 3


def created_of(name: str) -> dt.datetime:
    return dt.datetime.strptime(name.split("-", 2)[2].split(".tar")[0], "%Y%m%dT%H%M%S.%fZ")


def test_backup_script_uploads_when_configured_and_fails_after_the_local_part(
    settings: Settings, db: peewee.Database, offsite: Offsite, tmp_path: Path
) -> None:
    env = {
        **_backup_script_env(settings, tmp_path),
        **S3Server.credentials_env(),
        **{name: value for name, value in os.environ.items() if name.startswith("ORDERDESK_MCP_")},
    }
    env.pop("ODMCP_BACKUP_KEEP")
    script = str(ROOT / "scripts" / "backup.sh")
    ok = subprocess.run([script], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == ""
    assert len(offsite.object_names()) == 1
    first = list_backups(settings.backups_dir)

    failing = {**env, "ORDERDESK_MCP_BACKUP_S3_URL": "s3://odmcp-no-such-bucket/x"}
    failed = subprocess.run([script], env=failing, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert "backup upload failed" in failed.stdout
    assert "does not exist" in failed.stdout
    assert TEST_SECRET_KEY not in failed.stdout + failed.stderr
    # The local part ran and its backup is kept (the day's newest replaced the earlier one).
    kept = list_backups(settings.backups_dir)
    assert len(kept) == 1
    assert kept[0].created > first[0].created
    kinds = [(kind, outcome) for kind, outcome, _ in job_rows(settings.data_dir)]
    assert kinds[-2:] == [("backup", "ok"), ("upload", "failed")]


def test_a_copy_altered_in_the_bucket_is_refused_at_fetch_or_at_restore(
    settings: Settings, db: peewee.Database, offsite: Offsite, tmp_path: Path
) -> None:
    created = invoke(settings.data_dir, "backup", "create", "--upload", "--json")
    assert created.exit_code == 0, created.output
    name = json.loads(created.stdout)["upload"]["name"]
    key = offsite.prefix + name
    s3 = offsite.s3
    stored = s3.get_object(Bucket=offsite.bucket, Key=key)  # type: ignore[attr-defined]
    body = bytearray(stored["Body"].read())
    body[len(body) // 2] ^= 0x01

    # Damaged on the way or at rest: the SHA-256 recorded at upload no longer matches.
    s3.put_object(Bucket=offsite.bucket, Key=key, Body=bytes(body), Metadata=stored["Metadata"])  # type: ignore[attr-defined]
    damaged = invoke(settings.data_dir, "backup", "fetch", name, "--dest", str(tmp_path / "a"))
    assert damaged.exit_code == 1
    assert "arrived damaged" in damaged.output
    assert not (tmp_path / "a" / name).exists()

    # Altered by someone who can write to the bucket (checksum recomputed): the seal refuses.
    s3.put_object(Bucket=offsite.bucket, Key=key, Body=bytes(body))  # type: ignore[attr-defined]
    fetched = invoke(settings.data_dir, "backup", "fetch", name, "--dest", str(tmp_path / "b"))
    assert fetched.exit_code == 0, fetched.output
    restored = invoke(
        tmp_path / "fresh",
        "backup", "restore", str(tmp_path / "b" / name),
        "--backup-key-file", str(offsite.key_file),
    )  # fmt: skip
    assert restored.exit_code == 1
    assert "damaged or was altered" in restored.output
    assert not (tmp_path / "fresh" / "orderdesk-mcp.db").exists()
