"""alerts.questions and the answers table (issue 16: situation reports)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Alerts issued before this revision asked no questions.
    op.add_column("alerts", sa.Column("questions", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "answers",
        sa.Column("id", _ID, nullable=False),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("recipient_id", _ID, nullable=False),
        sa.Column("organization_id", _ID, nullable=False),
        sa.Column("question_id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("inbound_id", _ID, nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_answers_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound_messages.id"],
            name=op.f("fk_answers_inbound_id_inbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_answers_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["recipients.id"], name=op.f("fk_answers_recipient_id_recipients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answers")),
    )
    op.create_index(
        "ix_answers_alert_org_question",
        "answers",
        ["alert_id", "organization_id", "question_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_answers_alert_org_question", table_name="answers")
    op.drop_table("answers")
    op.execute("ALTER TABLE alerts DROP COLUMN questions")
