"""alerts.planned_recipients: how far an alert's planning has come (issue 15)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Alerts issued before this revision were planned whole in their issuing transaction; a
    # value of 0 is only read while an alert is still `dispatching`, which they are not.
    op.add_column(
        "alerts",
        sa.Column("planned_recipients", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.execute("ALTER TABLE alerts DROP COLUMN planned_recipients")
