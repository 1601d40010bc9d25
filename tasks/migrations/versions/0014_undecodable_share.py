"""`articles.undecodable_share`: how much of a page was bytes no decoding could read.

Text with invalid bytes was stored with U+FFFD (or without them, the cleaning dropping them) and no warning.
The share is now counted before cleaning, checked by the `cleaned` suite (over 1%: quarantined) and stored.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("undecodable_share", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("undecodable_share")
