"""Heartbeat rows of the serve processes of a server group, and the outcomes of CLI jobs."""

from __future__ import annotations

import peewee


def upgrade(db: peewee.Database) -> None:
    class ServerHeartbeat(peewee.Model):
        server_id = peewee.CharField(primary_key=True)
        hostname = peewee.CharField()
        pid = peewee.IntegerField()
        listen = peewee.CharField(default="")
        version = peewee.CharField(default="")
        started = peewee.DateTimeField()
        last_seen = peewee.DateTimeField(index=True)

        class Meta:
            table_name = "server_heartbeat"

    class JobRun(peewee.Model):
        id = peewee.AutoField()
        kind = peewee.CharField(index=True)
        started = peewee.DateTimeField()
        finished = peewee.DateTimeField()
        outcome = peewee.CharField()
        detail = peewee.TextField(default="")
        size_bytes = peewee.BigIntegerField(null=True)

        class Meta:
            table_name = "job_run"
            indexes = ((("kind", "finished"), False),)

    with db.bind_ctx([ServerHeartbeat, JobRun]):
        db.create_tables([ServerHeartbeat, JobRun])
