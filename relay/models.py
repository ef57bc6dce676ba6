"""The domain (SPEC 3) as SQLAlchemy 2.0 models.

Times are aware datetimes stored in UTC (`UTCDateTime`), shown in Asia/Tokyo at the edges.
The lists of persons who need help in a disaster (災害時要援護者名簿) are never stored here: an
organization only records that it holds one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Autoincrementing 64-bit keys on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out — on SQLite too, which keeps no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


# --- directory -------------------------------------------------------------------------------

ORG_KINDS = (
    "ward_office",
    "federation",
    "association",
    "disaster_base",
    "care_plaza",
    "facility",
    "shelter",
    "hospital",
)
LANGUAGES = ("ja", "en", "ja-easy")


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    district: Mapped[str] = mapped_column(String(100), default="", index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    holds_assistance_list: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    parent: Mapped[Organization | None] = relationship(remote_side=[id])
    contacts: Mapped[list[Contact]] = relationship(back_populates="organization")


class Contact(Base):
    """A person acting for an organization; identified within it by priority (1 = primary)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("organization_id", "priority"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100), default="")
    priority: Mapped[int] = mapped_column(Integer, default=1)
    language: Mapped[str] = mapped_column(String(8), default="ja")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="contacts")
    paths: Mapped[list[ContactPath]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )


class ContactPath(Base):
    """One way to reach a contact. kind: mobile | landline | email (the CSV column);
    line_type: mobile | landline | ip_phone for numbers (SMS only to mobile), None for email."""

    __tablename__ = "contact_paths"
    __table_args__ = (UniqueConstraint("contact_id", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254), index=True)
    line_type: Mapped[str | None] = mapped_column(String(16))

    contact: Mapped[Contact] = relationship(back_populates="paths")


# --- alerts and their fan-out -----------------------------------------------------------------


class Alert(Base):
    """A CAP 1.2 alert plus its workflow (SPEC 3)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # CAP
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    sender: Mapped[str] = mapped_column(String(200))
    sent_at: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # Actual | Exercise | Test
    msg_type: Mapped[str] = mapped_column(String(16), default="Alert")  # Alert|Update|Cancel
    scope: Mapped[str] = mapped_column(String(16), default="Restricted")
    references: Mapped[list[Any]] = mapped_column(default=list)  # CAP identifiers
    note: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), default="Safety")
    event: Mapped[str] = mapped_column(String(200), default="")
    urgency: Mapped[str] = mapped_column(String(16), default="Immediate")
    severity: Mapped[str] = mapped_column(String(16), default="Severe")
    certainty: Mapped[str] = mapped_column(String(16), default="Observed")
    response_type: Mapped[str | None] = mapped_column(String(32))
    headline: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    instruction: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="ja")
    area_desc: Mapped[str] = mapped_column(Text, default="")
    geocode: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # workflow
    reference: Mapped[str] = mapped_column(String(8), unique=True)
    evacuation_level: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(16), default="cascade")  # blast | cascade
    ack_required: Mapped[bool] = mapped_column(Boolean, default=True)
    answer_options: Mapped[list[Any]] = mapped_column(default=list)
    ack_deadline: Mapped[datetime | None] = mapped_column()
    escalation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    issued_by: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    drill_run_id: Mapped[int | None] = mapped_column(ForeignKey("drill_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    # The CAP document an imported alert came from: a (sender, identifier) is issued once, and
    # a unique index holds that even for two copies posted in the same instant.
    source_sender: Mapped[str | None] = mapped_column(String(200))
    source_identifier: Mapped[str | None] = mapped_column(String(200))
    # CAP <effective>, <onset>, <expires> of the alert (an imported document's own, or set
    # by the relay); None where the document gave none.
    effective_at: Mapped[datetime | None] = mapped_column()
    onset_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    # Recipients (by position) whose deliveries are written: planning goes a slice at a time
    # while the first slices already send (relay/alerts/planning.py).
    planned_recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The questionnaires the alert asks (templates/questions/<name>.toml), in order.
    questions: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")

    __table_args__ = (
        Index("uq_alerts_cap_source", "source_sender", "source_identifier", unique=True),
    )


class Recipient(Base):
    """One contact within one alert: reached? acknowledged? what happens next, and when."""

    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("alert_id", "contact_id"),
        Index("ix_recipients_due", "next_action_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    position: Mapped[int] = mapped_column(Integer)  # coverage-first order within the alert
    state: Mapped[str] = mapped_column(String(16), default="planned")
    step: Mapped[int] = mapped_column(Integer, default=0)  # escalation step reached
    next_action_at: Mapped[datetime | None] = mapped_column()
    reached_at: Mapped[datetime | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    ack_method: Mapped[str | None] = mapped_column(String(16))
    ack_answer: Mapped[str | None] = mapped_column(String(32))


class Delivery(Base):
    """One attempt to reach a recipient on one channel."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("recipient_id", "channel", "attempt"),
        Index("ix_deliveries_alert_state", "alert_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # sms | voice | email
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8), default="ja")
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="planned")
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    reached_at: Mapped[datetime | None] = mapped_column()  # a person answered or opened the link
    finished_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryEvent(Base):
    """A provider event (status callback, SMTP result) exactly as received."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboundMessage(Base):
    """Every inbound SMS and keypress, matched to a contact or not: nothing is dropped."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | voice_key | voice_speech | link
    from_address: Mapped[str] = mapped_column(String(254), default="")
    to_address: Mapped[str] = mapped_column(String(254), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    interpretation: Mapped[str | None] = mapped_column(String(16))  # ack|answer|report|unknown
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column()
    handled_by: Mapped[str | None] = mapped_column(String(100))


class Acknowledgement(Base):
    __tablename__ = "acknowledgements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"), unique=True)
    method: Mapped[str] = mapped_column(String(16))  # sms_reply|voice_key|voice_speech|link|manual
    channel: Mapped[str | None] = mapped_column(String(8))  # the channel that reached them
    answer_code: Mapped[str] = mapped_column(String(32), default="ack")
    text: Mapped[str | None] = mapped_column(Text)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    actor: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Answer(Base):
    """One answer of an organization to one of its alert's questions (relay/questions/). Every
    version is kept; the latest per (alert, organization, question) counts."""

    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_alert_org_question", "alert_id", "organization_id", "question_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    question_id: Mapped[str] = mapped_column(String(40))
    number: Mapped[int | None] = mapped_column(Integer)  # an option's number, or the number
    text: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16))  # link | sms_reply | voice_key | manual
    actor: Mapped[str | None] = mapped_column(String(100))  # the operator, for manual
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- drills ----------------------------------------------------------------------------------


class DrillSchedule(Base):
    __tablename__ = "drill_schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    template: Mapped[str] = mapped_column(String(64), default="drill")
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channels: Mapped[list[Any]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(16), default="cascade")
    ack_within_s: Mapped[int] = mapped_column(Integer, default=1800)
    # cascade timing of the drill's alert: voice_after_s, next_contact_after_s, time_scale
    escalation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    grace_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DrillRun(Base):
    """One firing of a schedule at one fire time: never two for the same (schedule, time)."""

    __tablename__ = "drill_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("drill_schedules.id"))
    fire_time: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done|missed
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


# --- people and records ------------------------------------------------------------------------

ROLES = ("viewer", "operator", "coordinator", "admin")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # Console sign-in (scrypt, per-user salt; relay/passwords.py). None: API token only.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised at sign-out: a console session carries the epoch it began in and is worth
    # nothing once the user's epoch has moved on (every session of the user ends).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """A task to publish, written in the same transaction as the work it starts.

    Published after commit; the sweeper republishes rows committed but never published.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


# --- JMA bulletins and prepared alerts (issue 17) ---------------------------------------------


class JmaBulletin(Base):
    """A JMA disaster-information XML document the relay received (feed or `relay jma ingest`)
    and what it did with it. A series (JMA's own rule) is title + office + status + event id;
    within a series the latest report time is in force."""

    __tablename__ = "jma_bulletins"
    __table_args__ = (Index("ix_jma_bulletins_series", "title", "office", "status", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # sha256 of the document: the same file fed twice is one row and acts once.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(500), default="")  # file name or feed link
    title: Mapped[str] = mapped_column(String(200))  # Control/Title
    office: Mapped[str] = mapped_column(String(100))  # Control/EditorialOffice
    status: Mapped[str] = mapped_column(String(16))  # 通常 | 訓練 | 試験
    info_type: Mapped[str] = mapped_column(String(16))  # 発表 | 訂正 | 取消
    info_kind: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(32))  # intensity | tsunami | warning | ...
    event_id: Mapped[str] = mapped_column(String(100), default="")
    serial: Mapped[str] = mapped_column(String(16), default="")
    report_at: Mapped[datetime] = mapped_column()
    headline: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(300), default="")  # what the relay did, in words
    rule: Mapped[str | None] = mapped_column(String(100))  # the trigger rule that acted
    strength: Mapped[int | None] = mapped_column(Integer)  # the rule's measure, for updates
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))


class AlertDraft(Base):
    """A prepared alert that an operator issues with one confirmation, or discards (a JMA
    trigger rule in `draft` mode). Issuing it runs the ordinary issue path with these fields."""

    __tablename__ = "alert_drafts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    # open | issued | discarded | withdrawn (the bulletin was cancelled by JMA)
    template: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    audience: Mapped[str] = mapped_column(String(500))  # the selector, as operators write it
    channels: Mapped[list[Any]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(16), default="cascade")
    status: Mapped[str] = mapped_column(String(16), default="Actual")  # Actual | Exercise
    questions: Mapped[list[Any]] = mapped_column(default=list)
    ack_within_s: Mapped[int] = mapped_column(Integer, default=900)
    rule: Mapped[str] = mapped_column(String(100), default="")
    bulletin_id: Mapped[int | None] = mapped_column(ForeignKey("jma_bulletins.id"))
    summary: Mapped[str] = mapped_column(Text, default="")  # the bulletin's own words and time
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column()


class JmaFeed(Base):
    """One Atom feed polled: its conditional-GET validators and its health."""

    __tablename__ = "jma_feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(500), unique=True)
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    checked_at: Mapped[datetime | None] = mapped_column()  # last attempt
    ok_at: Mapped[datetime | None] = mapped_column()  # last answer that was read (200 or 304)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    error: Mapped[str | None] = mapped_column(Text)


class JmaEntry(Base):
    """One feed entry: fetched once (JMA blocks addresses that fetch the same file again and
    again), retried a bounded number of times when the fetch fails."""

    __tablename__ = "jma_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(500), unique=True)  # Atom <id>
    feed_url: Mapped[str] = mapped_column(String(500))
    link: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(200), default="")
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime | None] = mapped_column()  # the document was read
    outcome: Mapped[str] = mapped_column(String(300), default="")
    bulletin_id: Mapped[int | None] = mapped_column(ForeignKey("jma_bulletins.id"))
