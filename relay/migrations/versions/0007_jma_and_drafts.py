"""jma bulletins, feeds, entries and alert drafts (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jma_feeds",
        sa.Column("id", _ID, nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("etag", sa.String(length=300), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jma_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_jma_feeds_url")),
    )
    op.create_table(
        "jma_bulletins",
        sa.Column("id", _ID, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("office", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("info_type", sa.String(length=16), nullable=False),
        sa.Column("info_kind", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("report_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=True),
        sa.Column("strength", sa.Integer(), nullable=True),
        sa.Column("alert_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_jma_bulletins_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jma_bulletins")),
        sa.UniqueConstraint("digest", name=op.f("uq_jma_bulletins_digest")),
    )
    with op.batch_alter_table("jma_bulletins", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jma_bulletins_series", ["title", "office", "status", "event_id"], unique=False
        )

    op.create_table(
        "alert_drafts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("audience", sa.String(length=500), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("ack_within_s", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("bulletin_id", _ID, nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("alert_id", _ID, nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_drafts_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["bulletin_id"],
            ["jma_bulletins.id"],
            name=op.f("fk_alert_drafts_bulletin_id_jma_bulletins"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_drafts")),
    )
    with op.batch_alter_table("alert_drafts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_drafts_state"), ["state"], unique=False)

    op.create_table(
        "jma_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("entry_id", sa.String(length=500), nullable=False),
        sa.Column("feed_url", sa.String(length=500), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=300), nullable=False),
        sa.Column("bulletin_id", _ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["bulletin_id"],
            ["jma_bulletins.id"],
            name=op.f("fk_jma_entries_bulletin_id_jma_bulletins"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jma_entries")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_jma_entries_entry_id")),
    )


def downgrade() -> None:
    op.drop_table("jma_entries")
    with op.batch_alter_table("alert_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_drafts_state"))

    op.drop_table("alert_drafts")
    with op.batch_alter_table("jma_bulletins", schema=None) as batch_op:
        batch_op.drop_index("ix_jma_bulletins_series")

    op.drop_table("jma_bulletins")
    op.drop_table("jma_feeds")
