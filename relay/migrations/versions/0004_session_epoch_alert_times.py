"""users.session_epoch (sign-out ends every session); alerts' CAP effective/onset/expires

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ALERT_TIMES = ("effective_at", "onset_at", "expires_at")


def upgrade() -> None:
    # Plain ALTERs in place, no batch table copy (see 0003: a copy trips the foreign keys).
    op.add_column(
        "users",
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
    )
    for name in _ALERT_TIMES:
        op.add_column("alerts", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for name in reversed(_ALERT_TIMES):
        op.execute(f"ALTER TABLE alerts DROP COLUMN {name}")
    op.execute("ALTER TABLE users DROP COLUMN session_epoch")
