"""alerts: the CAP document an imported alert came from, unique per (sender, identifier)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTERs and an index, no batch table copy: SQLite adds nullable columns in place, and
    # a copy of `alerts` would trip the foreign keys that recipients and drill runs hold on it.
    op.add_column("alerts", sa.Column("source_sender", sa.String(length=200), nullable=True))
    op.add_column("alerts", sa.Column("source_identifier", sa.String(length=200), nullable=True))
    # Until now the origin lived only in the import's audit event: copy it over (the first
    # import of a document wins, as the old check did), then let the index hold the rule.
    conn = op.get_bind()
    seen: set[tuple[str, str]] = set()
    rows = conn.execute(
        sa.text("SELECT details FROM audit_events WHERE action = 'alert.import_cap' ORDER BY id")
    )
    for (details,) in rows:
        data = json.loads(details) if isinstance(details, str) else (details or {})
        sender, identifier = data.get("source_sender"), data.get("source_identifier")
        key = (str(sender), str(identifier))
        if sender is None or identifier is None or key in seen or not data.get("alert_id"):
            continue
        seen.add(key)
        conn.execute(
            sa.text("UPDATE alerts SET source_sender = :s, source_identifier = :i WHERE id = :a"),
            {"s": key[0], "i": key[1], "a": int(data["alert_id"])},
        )
    op.create_index(
        "uq_alerts_cap_source", "alerts", ["source_sender", "source_identifier"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_alerts_cap_source", table_name="alerts")
    # DROP COLUMN in place (SQLite 3.35+ and PostgreSQL), again without a table copy.
    op.execute("ALTER TABLE alerts DROP COLUMN source_identifier")
    op.execute("ALTER TABLE alerts DROP COLUMN source_sender")
