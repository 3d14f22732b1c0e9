"""The master key canary: one sealed constant that tells a wrong master key at start-up."""

from __future__ import annotations

import peewee


def upgrade(db: peewee.Database) -> None:
    class VaultCanary(peewee.Model):
        id = peewee.IntegerField(primary_key=True)
        sealed = peewee.BlobField()
        created = peewee.DateTimeField()

        class Meta:
            table_name = "vault_canary"

    # The row itself is written by the first command that has the master key (serve, init,
    # db upgrade): a migration never sees the key.
    with db.bind_ctx([VaultCanary]):
        db.create_tables([VaultCanary])
