"""Drill and alert reports (SPEC 4.4): how fast the ward answered, and who never did.

Counted per organization (an association has answered when any of its contacts has), which is
what the ward's drills measure; per-recipient figures are included beside them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relay.models import (
    Acknowledgement,
    Alert,
    Contact,
    Delivery,
    DrillRun,
    Organization,
    Recipient,
)
from relay.reports.answers import answer_tally, required_answer_seconds
from relay.timefmt import local

MARKS_MIN = (5, 15, 30)


class ReportError(LookupError):
    pass


@dataclass(frozen=True)
class _Org:
    code: str
    name: str
    kind: str
    district: str


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


def alert_report(session: Session, alert: Alert) -> dict[str, Any]:
    recipients = list(session.scalars(select(Recipient).where(Recipient.alert_id == alert.id)))
    org_ids = {r.organization_id for r in recipients}
    orgs = {
        o.id: _Org(o.code, o.name, o.kind, o.district)
        for o in session.scalars(select(Organization).where(Organization.id.in_(org_ids)))
    }
    first_ack: dict[int, datetime] = {}
    for r in recipients:
        if r.acknowledged_at is not None:
            known = first_ack.get(r.organization_id)
            if known is None or r.acknowledged_at < known:
                first_ack[r.organization_id] = r.acknowledged_at
    start = alert.sent_at
    deadline = alert.ack_deadline or start + timedelta(minutes=30)
    # A simulated run's clock was compressed: report in simulated time.
    scale = float(alert.escalation.get("time_scale", 1.0))
    seconds = {oid: (t - start).total_seconds() * scale for oid, t in first_ack.items()}
    within_deadline = {oid for oid, t in first_ack.items() if t <= deadline}
    total = len(orgs)

    def rate(ids: set[int], among: set[int] | None = None) -> float:
        base = among if among is not None else set(orgs)
        return round(len(ids & base) / len(base), 4) if base else 0.0

    marks = {f"{m}m": rate({oid for oid, s in seconds.items() if s <= m * 60}) for m in MARKS_MIN}
    marks["deadline"] = rate(within_deadline)
    times = sorted(seconds.values())
    tried = _attempts(session, alert)

    def group(key: str) -> list[dict[str, Any]]:
        members: dict[str, set[int]] = defaultdict(set)
        for oid, org in orgs.items():
            members[getattr(org, key) or "-"].add(oid)
        return [
            {
                key: name,
                "organizations": len(ids),
                "acknowledged": len(ids & within_deadline),
                "rate": rate(within_deadline, ids),
            }
            for name, ids in sorted(members.items())
        ]

    return {
        "alert": {
            "id": alert.id,
            "reference": alert.reference,
            "status": alert.status,
            "template": alert.template,
            "mode": alert.mode,
            "state": alert.state,
            "sent_at": alert.sent_at.isoformat(),
            "sent_at_local": local(alert.sent_at),
            "deadline": deadline.isoformat(),
            "channels": alert.channels,
        },
        "organizations": total,
        "acknowledged": len(within_deadline),
        "acknowledged_at_end": len(first_ack),
        "recipients": len(recipients),
        "recipients_acknowledged": sum(1 for r in recipients if r.acknowledged_at is not None),
        "rates": marks,
        "time_to_ack_s": {
            "median": statistics.median(times) if times else None,
            "p90": _percentile(times, 0.9),
        },
        "channels": _channel_table(session, alert),
        "by_district": group("district"),
        "by_kind": group("kind"),
        "methods": _method_mix(session, alert),
        "never_answered": [
            {
                "code": o.code,
                "name": o.name,
                "district": o.district,
                "kind": o.kind,
                "tried": tried.get(oid, []),
            }
            for oid, o in sorted(orgs.items(), key=lambda item: item[1].code)
            if oid not in first_ack
        ],
        "timeline": _timeline(times, (deadline - start).total_seconds() * scale, total),
        "time_scale": scale,
        **_situation_report(session, alert),
    }


def _situation_report(session: Session, alert: Alert) -> dict[str, Any]:
    """The answers to the alert's questions and how fast the required ones came (issue 16);
    nothing for an alert that asked none."""
    if not alert.questions:
        return {}
    done = required_answer_seconds(session, alert)
    return {
        "answers": answer_tally(session, alert),
        "time_to_required_answers_s": {
            "median": statistics.median(done) if done else None,
            "p90": _percentile(done, 0.9),
        },
    }


def _channel_table(session: Session, alert: Alert) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for channel, sent_at, delivered_at, reached_at in session.execute(
        select(
            Delivery.channel, Delivery.sent_at, Delivery.delivered_at, Delivery.reached_at
        ).where(Delivery.alert_id == alert.id)
    ):
        row = table[channel]
        row["planned"] += 1
        row["sent"] += sent_at is not None
        row["delivered"] += delivered_at is not None
        row["reached"] += reached_at is not None
    acks = session.execute(
        select(Acknowledgement.channel)
        .join(Recipient, Recipient.id == Acknowledgement.recipient_id)
        .where(Recipient.alert_id == alert.id)
    ).scalars()
    for ack_channel in acks:
        table[ack_channel or "manual"]["acknowledged"] += 1
    return {ch: dict(counts) for ch, counts in sorted(table.items())}


def _method_mix(session: Session, alert: Alert) -> dict[str, int]:
    """How people acknowledged: sms_reply, voice_key, link, manual."""
    rows = session.execute(
        select(Acknowledgement.method, func.count())
        .join(Recipient, Recipient.id == Acknowledgement.recipient_id)
        .where(Recipient.alert_id == alert.id)
        .group_by(Acknowledgement.method)
    ).all()
    return {method: count for method, count in sorted(rows)}


def _attempts(session: Session, alert: Alert) -> dict[int, list[str]]:
    """Per organization, what was tried: "会長 sms:delivered", "会長 voice:machine", ..."""
    rows = session.execute(
        select(Recipient.organization_id, Contact.role, Delivery.channel, Delivery.state)
        .join(Recipient, Recipient.id == Delivery.recipient_id)
        .join(Contact, Contact.id == Recipient.contact_id)
        .where(Delivery.alert_id == alert.id, Delivery.state.not_in(("planned", "cancelled")))
        .order_by(Recipient.position, Delivery.position)
    ).all()
    tried: dict[int, list[str]] = defaultdict(list)
    for org_id, role, channel, state in rows:
        tried[org_id].append(f"{role} {channel}:{state}")
    return tried


def _timeline(times: list[float], horizon_s: float, total: int) -> list[dict[str, float]]:
    """Cumulative share of organizations acknowledged, minute by minute to the deadline."""
    minutes = max(1, int(horizon_s // 60))
    points = []
    index = 0
    for minute in range(minutes + 1):
        while index < len(times) and times[index] <= minute * 60:
            index += 1
        points.append({"minute": minute, "rate": round(index / total, 4) if total else 0.0})
    return points


def drill_report(session: Session, run_id: int) -> dict[str, Any]:
    run = session.get(DrillRun, run_id)
    if run is None or run.alert_id is None:
        raise ReportError(f"no drill run {run_id} with an alert")
    alert = session.get(Alert, run.alert_id)
    assert alert is not None
    report = alert_report(session, alert)
    report["run"] = {"id": run.id, "fire_time": run.fire_time.isoformat(), "state": run.state}
    previous = []
    if run.schedule_id is not None:
        earlier = session.scalars(
            select(DrillRun)
            .where(
                DrillRun.schedule_id == run.schedule_id,
                DrillRun.fire_time < run.fire_time,
                DrillRun.alert_id.is_not(None),
            )
            .order_by(DrillRun.fire_time.desc())
            .limit(8)
        )
        for other in earlier:
            other_alert = session.get(Alert, other.alert_id)
            if other_alert is None:
                continue
            figures = alert_report(session, other_alert)
            previous.append(
                {
                    "run_id": other.id,
                    "fire_time": other.fire_time.isoformat(),
                    "rates": figures["rates"],
                    "time_to_ack_s": figures["time_to_ack_s"],
                }
            )
    report["previous"] = previous
    return report
