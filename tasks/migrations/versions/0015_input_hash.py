"""`articles.input_hash`, `duplicates.input_hash`: what each text or copy was cleaned from.

A page fetched again (a refresh, a touched file, a JSON Lines file read again from its start) whose body,
media type, charset and hints are those its stored article or copy was cleaned from is unchanged: the
fetch stage counts it so and passes it on no further, instead of cleaning, checking and loading it again
(which read as a reload in the run's stage table). Rows loaded before have none, and go on once more.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("articles", "duplicates"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("input_hash", sa.String(64), nullable=True))
            batch.create_index(f"ix_{table}_input_hash", ["input_hash"])


def downgrade() -> None:
    for table in ("articles", "duplicates"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_input_hash")
            batch.drop_column("input_hash")
