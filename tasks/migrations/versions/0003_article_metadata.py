"""Articles get the metadata the clean stage now extracts: modified date, lead image, tags.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("modified_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("image", sa.Text()))
        batch.add_column(sa.Column("tags", Json))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("tags")
        batch.drop_column("image")
        batch.drop_column("modified_at")
