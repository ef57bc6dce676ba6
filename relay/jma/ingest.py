"""What the relay does with a JMA bulletin, from the feed or `relay jma ingest`.

Every document that parses is recorded (jma_bulletins) with what the relay did, in words; a
document that does not parse is refused with one log line and leaves nothing else. The
bulletin's life, in the order the checks run:

1. The same document twice (sha256) acts once.
2. Older than RELAY_JMA_MAX_AGE, or older than a bulletin of its series already received
   (JMA: the latest report time of a series is in force): recorded only.
3. 試験 never acts; 訓練 acts only through a rule marked `exercise`, as an exercise alert.
4. 取消 withdraws the series' open draft, or cancels its alert through the ordinary cancel path.
5. The rules that match (relay/jma/matching.py). For each: a later bulletin of the same event
   (EventID) that is stronger updates the draft, or the issued alert (CAP Update); the same or
   weaker changes nothing. A new event within RELAY_JMA_AFTERSHOCK_WINDOW of the rule's last
   alert acts only if stronger than it — people stop reading a relay that cries wolf. Else a
   draft, or (rule `auto`) an alert at once, which withdraws the event's open drafts.

The caller commits, then publishes the outbox, so an automatic alert's first sends leave at
once (the same path as `relay alert issue`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from relay import audit
from relay.alerts.drafts import (
    OPEN,
    DraftError,
    DraftFields,
    create_draft,
    revise_draft,
    withdraw_draft,
)
from relay.alerts.issuing import IssueError, issue_alert
from relay.alerts.lifecycle import LifecycleError, cancel_alert, update_alert
from relay.config import Settings
from relay.jma.bulletin import Bulletin
from relay.jma.matching import Trigger, match
from relay.jma.parsing import JmaDocumentError, parse
from relay.jma.rules import Rule, load_rules
from relay.models import Alert, AlertDraft, JmaBulletin

log = logging.getLogger(__name__)

ACTOR = "jma"
# Alerts still going out or waiting for answers; an update or a cancel acts only on these.
_LIVE = ("dispatching", "active")


@dataclass(frozen=True)
class Ingested:
    bulletin_id: int | None  # None: the document was refused
    outcome: str  # what the relay did, in words (also on the bulletin's row and in the log)
    alert_id: int | None = None
    draft_id: int | None = None


@lru_cache(maxsize=8)
def _rules(path: Path | None) -> tuple[Rule, ...]:
    return load_rules(path)


def ingest_document(
    session: Session, settings: Settings, data: bytes, source: str, now: datetime | None = None
) -> Ingested:
    now = now or datetime.now(UTC)
    try:
        bulletin = parse(data)
    except JmaDocumentError as exc:
        log.warning("JMA document refused (%s): %s", source, exc)
        return Ingested(None, f"refused: {exc}")
    digest = hashlib.sha256(data).hexdigest()
    seen = session.scalar(select(JmaBulletin).where(JmaBulletin.digest == digest))
    if seen is not None:
        return Ingested(seen.id, f"already received as bulletin {seen.id}")
    row = JmaBulletin(
        digest=digest,
        received_at=now,
        source=source[:500],
        title=bulletin.title[:200],
        office=bulletin.office[:100],
        status=bulletin.status[:16],
        info_type=bulletin.info_type[:16],
        info_kind=bulletin.info_kind[:100],
        kind=bulletin.kind,
        event_id=bulletin.event_id[:100],
        serial=bulletin.serial[:16],
        report_at=bulletin.report_at,
        headline=bulletin.headline,
    )
    session.add(row)
    session.flush()
    result = _act(session, settings, bulletin, row, now)
    row.outcome = result.outcome[:300]
    log.info(
        "JMA bulletin %d (%s, %s, %s, event %s): %s",
        row.id,
        bulletin.title,
        bulletin.status,
        bulletin.info_type,
        bulletin.event_id or "-",
        result.outcome,
    )
    return Ingested(row.id, result.outcome, result.alert_id, result.draft_id)


@dataclass(frozen=True)
class _Acted:
    outcome: str
    alert_id: int | None = None
    draft_id: int | None = None


def _act(
    session: Session, settings: Settings, bulletin: Bulletin, row: JmaBulletin, now: datetime
) -> _Acted:
    max_age = settings.jma_max_age
    if max_age is not None and now - bulletin.report_at > max_age:
        return _Acted(f"recorded only: reported more than {max_age} ago")
    later = _later_in_series(session, row)
    if later is not None:
        return _Acted(f"recorded only: bulletin {later.id} of this series is later")
    if bulletin.status == "試験":
        return _Acted("recorded only: a 試験 (test) bulletin")
    if bulletin.info_type == "取消":
        return _cancel_series(session, settings, row)
    rules = _rules(settings.triggers_path)
    if bulletin.status == "訓練":
        rules = tuple(r for r in rules if r.exercise)
    elif bulletin.status != "通常":
        return _Acted(f"recorded only: status {bulletin.status!r}")
    triggers = match(bulletin, rules)
    lapsed = _withdraw_lapsed_drafts(session, row, {t.rule.name for t in triggers})
    if not triggers:
        return _Acted("recorded: no rule matched" + lapsed)
    results = [_trigger(session, settings, bulletin, row, t, now) for t in triggers]
    return _Acted(
        "; ".join(r.outcome for r in results) + lapsed,
        next((r.alert_id for r in results if r.alert_id), None),
        next((r.draft_id for r in results if r.draft_id), None),
    )


def _series(row: JmaBulletin) -> tuple[ColumnElement[bool], ...]:
    return (
        JmaBulletin.title == row.title,
        JmaBulletin.office == row.office,
        JmaBulletin.status == row.status,
        JmaBulletin.event_id == row.event_id,
        JmaBulletin.id != row.id,
    )


def _later_in_series(session: Session, row: JmaBulletin) -> JmaBulletin | None:
    return session.scalar(
        select(JmaBulletin).where(*_series(row), JmaBulletin.report_at > row.report_at).limit(1)
    )


def _cancel_series(session: Session, settings: Settings, row: JmaBulletin) -> _Acted:
    """JMA took the bulletin back: withdraw its open drafts, cancel its live alert."""
    acted = session.scalars(
        select(JmaBulletin)
        .where(*_series(row), JmaBulletin.rule.is_not(None))
        .order_by(JmaBulletin.id.desc())
    ).all()
    done: list[str] = []
    cancelled_id = None
    for earlier in acted:
        for draft in _drafts_of(session, earlier.id):
            withdraw_draft(session, draft, f"JMA cancelled the bulletin (bulletin {row.id})")
            done.append(f"draft {draft.id} withdrawn")
        alert = session.get(Alert, earlier.alert_id) if earlier.alert_id else None
        if alert is not None and alert.state in _LIVE:
            try:
                cancel_alert(session, settings, alert.id, ACTOR)
            except LifecycleError as exc:
                done.append(f"alert {alert.id} not cancelled: {exc}")
                continue
            cancelled_id = alert.id
            done.append(f"alert {alert.id} cancelled")
    if not done:
        return _Acted("取消 recorded: nothing of this series was sent or drafted")
    return _Acted("取消: " + ", ".join(done), cancelled_id)


def _withdraw_lapsed_drafts(session: Session, row: JmaBulletin, still: set[str]) -> str:
    """A later bulletin of the series is in force: a draft whose rule it no longer meets (the
    warning was lifted, 解除) is withdrawn. An issued alert stays: an all-clear is the
    operator's call."""
    lapsed = session.scalars(
        select(AlertDraft)
        .join(JmaBulletin, AlertDraft.bulletin_id == JmaBulletin.id)
        .where(*_series(row), AlertDraft.state == OPEN, AlertDraft.rule.not_in(still))
    ).all()
    for draft in lapsed:
        withdraw_draft(session, draft, f"no longer in force after bulletin {row.id}")
    return "".join(f"; draft {d.id} withdrawn (no longer in force)" for d in lapsed)


def _drafts_of(session: Session, bulletin_id: int) -> list[AlertDraft]:
    return list(
        session.scalars(
            select(AlertDraft).where(
                AlertDraft.bulletin_id == bulletin_id, AlertDraft.state == OPEN
            )
        )
    )


def _last_acted(
    session: Session, rule: str, status: str, *where: ColumnElement[bool]
) -> JmaBulletin | None:
    return session.scalar(
        select(JmaBulletin)
        .where(
            JmaBulletin.rule == rule,
            JmaBulletin.status == status,
            JmaBulletin.strength.is_not(None),
            *where,
        )
        .order_by(JmaBulletin.id.desc())
        .limit(1)
    )


def _trigger(
    session: Session,
    settings: Settings,
    bulletin: Bulletin,
    row: JmaBulletin,
    trigger: Trigger,
    now: datetime,
) -> _Acted:
    rule = trigger.rule
    if bulletin.event_id:
        same_event = _last_acted(
            session, rule.name, row.status, JmaBulletin.event_id == row.event_id
        )
        if same_event is not None:
            return _same_event(session, settings, bulletin, row, trigger, same_event, now)
    window_start = bulletin.report_at - settings.jma_aftershock_window
    recent = _last_acted(session, rule.name, row.status, JmaBulletin.report_at >= window_start)
    if recent is not None and (recent.strength or 0) >= trigger.strength:
        return _Acted(
            f"{rule.name}: not stronger than bulletin {recent.id} within "
            f"{settings.jma_aftershock_window}; nothing sent"
        )
    return _new(session, settings, bulletin, row, trigger, now)


def _same_event(
    session: Session,
    settings: Settings,
    bulletin: Bulletin,
    row: JmaBulletin,
    trigger: Trigger,
    earlier: JmaBulletin,
    now: datetime,
) -> _Acted:
    rule = trigger.rule
    if trigger.strength <= (earlier.strength or 0):
        return _Acted(f"{rule.name}: same event as bulletin {earlier.id}, not stronger")
    row.rule, row.strength = rule.name, trigger.strength
    drafts = _drafts_of(session, earlier.id)
    if drafts:
        for draft in drafts:
            revise_draft(session, draft, trigger.variables, trigger.summary)
            draft.bulletin_id = row.id
        return _Acted(f"{rule.name}: draft {drafts[0].id} revised", draft_id=drafts[0].id)
    alert = session.get(Alert, earlier.alert_id) if earlier.alert_id else None
    if alert is None or alert.state not in _LIVE:
        # The draft was discarded or the alert is over: stronger news is news again.
        return _new(session, settings, bulletin, row, trigger, now)
    try:
        updated = update_alert(
            session, settings, alert.id, rule.template, trigger.variables, f"{ACTOR}:{rule.name}"
        )
    except LifecycleError as exc:
        log.error("JMA rule %s could not update alert %d: %s", rule.name, alert.id, exc)
        return _Acted(f"{rule.name}: alert {alert.id} not updated: {exc}")
    row.alert_id = updated.id
    _audit(session, row, updated.id, "jma.update")
    return _Acted(f"{rule.name}: alert {alert.id} updated by alert {updated.id}", updated.id)


def _new(
    session: Session,
    settings: Settings,
    bulletin: Bulletin,
    row: JmaBulletin,
    trigger: Trigger,
    now: datetime,
) -> _Acted:
    rule = trigger.rule
    fields = DraftFields(
        template=rule.template,
        audience=rule.audience,
        variables=trigger.variables,
        channels=rule.channels,
        mode=rule.mode,
        status="Exercise" if bulletin.status == "訓練" else "Actual",
        questions=rule.questions,
        ack_within=rule.ack_within,
    )
    row.rule, row.strength = rule.name, trigger.strength
    summary = f"{trigger.summary}\n{bulletin.title}（{bulletin.office}）"
    if rule.action != "auto":
        draft = create_draft(session, fields, rule=rule.name, summary=summary, bulletin_id=row.id)
        return _Acted(f"{rule.name}: draft {draft.id} prepared", draft_id=draft.id)
    try:
        with session.begin_nested():  # a refused issue leaves the bulletin's record intact
            alert = issue_alert(session, settings, fields.request(f"{ACTOR}:{rule.name}"), now)
    except (IssueError, DraftError) as exc:
        log.error("JMA rule %s could not issue its alert: %s", rule.name, exc)
        row.rule = row.strength = None
        return _Acted(f"{rule.name}: alert not issued: {exc}")
    row.alert_id = alert.id
    _audit(session, row, alert.id, "jma.alert")
    if row.event_id:
        _withdraw_event_drafts(session, row, f"alert {alert.id} went out for the same event")
    return _Acted(f"{rule.name}: alert {alert.id} issued ({alert.reference})", alert.id)


def _withdraw_event_drafts(session: Session, row: JmaBulletin, reason: str) -> None:
    for draft in session.scalars(
        select(AlertDraft)
        .join(JmaBulletin, AlertDraft.bulletin_id == JmaBulletin.id)
        .where(
            AlertDraft.state == OPEN,
            JmaBulletin.event_id == row.event_id,
            JmaBulletin.status == row.status,
        )
    ).all():
        withdraw_draft(session, draft, reason)


def _audit(session: Session, row: JmaBulletin, alert_id: int, action: str) -> None:
    audit.record(
        session,
        ACTOR,
        action,
        target=f"alert {alert_id}",
        summary=f"{row.title} ({row.office}, {row.report_at.isoformat()}) bulletin {row.id}",
        bulletin_id=row.id,
        rule=row.rule,
    )
