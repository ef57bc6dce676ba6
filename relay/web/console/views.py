"""What the console's pages show, read from the database: active alerts, an alert's live
progress (relay.alerts.status plus a per-district table and the silent organizations by name),
and the issue form's preview (relay.messages renders, relay.directory.audience resolves;
nothing written); the prepared alerts (drafts) with that same preview."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from relay.alerts.drafts import fields_of, open_drafts
from relay.alerts.sms_length import sample_context
from relay.alerts.status import alert_status
from relay.config import Settings
from relay.directory.audience import AudienceError, Target, parse_audience, resolve
from relay.messages import (
    CHANNELS,
    LANGUAGES,
    MessageError,
    default_composer,
    length_note,
    render,
    sms_budget,
    validate,
)
from relay.models import Alert, AlertDraft, Contact, JmaBulletin, Organization, Recipient
from relay.questions.asked import check_choice, questions_for
from relay.questions.catalog import load_all
from relay.reports.answers import answer_tally
from relay.timefmt import local

OPEN_STATES = ("draft", "dispatching", "active")
# Sent by the relay itself at a deadline, never chosen by an operator.
INTERNAL_TEMPLATES = frozenset({"staff-summary"})


def alert_rows(session: Session, open_only: bool, limit: int = 50) -> list[dict[str, Any]]:
    """Alerts for the dashboard, newest first, with recipients and acknowledgements."""
    counts = (
        select(
            Recipient.alert_id,
            func.count().label("recipients"),
            func.count(Recipient.acknowledged_at).label("acknowledged"),
        )
        .group_by(Recipient.alert_id)
        .subquery()
    )
    stmt = (
        select(Alert, counts.c.recipients, counts.c.acknowledged)
        .outerjoin(counts, counts.c.alert_id == Alert.id)
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    stmt = stmt.where(
        Alert.state.in_(OPEN_STATES) if open_only else Alert.state.not_in(OPEN_STATES)
    )
    return [
        {"alert": a, "recipients": n or 0, "acknowledged": acked or 0}
        for a, n, acked in session.execute(stmt).all()
    ]


def districts(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """Per district: organizations in the alert and how many have acknowledged (any contact)."""
    per_org = (
        select(
            Organization.district.label("district"),
            Organization.id.label("org_id"),
            func.max(case((Recipient.acknowledged_at.is_not(None), 1), else_=0)).label("acked"),
            func.max(case((Recipient.reached_at.is_not(None), 1), else_=0)).label("reached"),
        )
        .join(Recipient, Recipient.organization_id == Organization.id)
        .where(Recipient.alert_id == alert_id)
        .group_by(Organization.district, Organization.id)
        .subquery()
    )
    rows = session.execute(
        select(
            per_org.c.district,
            func.count(),
            func.sum(per_org.c.acked),
            func.sum(per_org.c.reached),
        )
        .group_by(per_org.c.district)
        .order_by(per_org.c.district)
    ).all()
    return [
        {
            "district": district or "—",
            "organizations": total,
            "acknowledged": int(acked or 0),
            "reached": int(reached or 0),
            "rate": round(int(acked or 0) / total, 4) if total else 0.0,
        }
        for district, total, acked, reached in rows
    ]


def silent_orgs(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """Organizations of the alert none of whose contacts has acknowledged, with the primary
    contact's name (whom to phone) — by code, as `relay alert status` lists them."""
    acked = select(Recipient.organization_id).where(
        Recipient.alert_id == alert_id, Recipient.acknowledged_at.is_not(None)
    )
    rows = session.execute(
        select(Organization.code, Organization.name, Organization.district, Organization.kind)
        .join(Recipient, Recipient.organization_id == Organization.id)
        .where(Recipient.alert_id == alert_id, Organization.id.not_in(acked))
        .group_by(Organization.code, Organization.name, Organization.district, Organization.kind)
        .order_by(Organization.code)
    ).all()
    first_contact = dict(
        session.execute(
            select(Organization.code, Contact.name)
            .join(Recipient, Recipient.contact_id == Contact.id)
            .join(Organization, Organization.id == Recipient.organization_id)
            .where(Recipient.alert_id == alert_id)
            .order_by(Recipient.position.desc())  # the last written wins: the first position
        ).all()
    )
    return [
        {
            "code": code,
            "name": name,
            "district": district or "—",
            "kind": kind,
            "contact": first_contact.get(code, ""),
        }
        for code, name, district, kind in rows
    ]


def live(session: Session, alert: Alert) -> dict[str, Any]:
    """Everything the alert's live page shows; also its JSON for the page's polling."""
    status = alert_status(session, alert)
    return {
        **status,
        "sent_at_local": local(alert.sent_at, "%Y-%m-%d %H:%M:%S"),
        "deadline_local": local(alert.ack_deadline, "%H:%M") if alert.ack_deadline else None,
        "districts": districts(session, alert.id),
        "silent": silent_orgs(session, alert.id),
        "open": alert.state in OPEN_STATES,
        "updated_local": local(datetime.now(UTC), "%H:%M:%S"),
        "answers": answer_tally(session, alert) if alert.questions else None,
    }


def template_choices() -> list[dict[str, Any]]:
    """Templates an operator can issue, with their variables for the form."""
    composer = default_composer()
    choices = []
    for name in composer.list_templates():
        if name in INTERNAL_TEMPLATES:
            continue
        spec = composer.spec(name)
        variables = []
        for var in (*spec.required, *spec.optional):
            info = composer.catalog.variable(var)
            variables.append(
                {
                    "name": var,
                    "required": var in spec.required,
                    "description": info.description,
                    # "対象地域 (area), e.g. 金沢区全域" → "対象地域": the form is Japanese.
                    "label": info.description.split(" (")[0].split("(")[0].strip() or var,
                    "sample": _sample_text(spec.sample.get(var)),
                }
            )
        choices.append({"name": name, "description": spec.description, "variables": variables})
    return choices


def _sample_text(value: object) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "" if value is None else str(value)


def preview(
    session: Session,
    settings: Settings,
    template: str,
    variables: Mapping[str, str],
    audience_text: str,
    status: str,
    channels: tuple[str, ...],
    questions: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The messages as recipients will get them, per language and channel, their SMS segments
    against the template's budget, and whom the audience reaches. Raises MessageError or
    AudienceError (as ValueError) with the reason; writes nothing."""
    validate(template, variables)
    audience = parse_audience(audience_text)
    contacts = resolve(session, audience)
    by_language: dict[str, int] = {}
    for contact in contacts:
        by_language[contact.language] = by_language.get(contact.language, 0) + 1
    sample = contacts[0] if contacts else None
    # A reference code and a link as long as real ones, so the preview's segment count is
    # the one the recipients' SMS will have.
    context = sample_context(
        settings,
        status,
        sample.org_name if sample else "〇〇自治会",
        sample.name if sample else "〇〇",
    )
    messages: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        rendered: dict[str, Any] = {}
        for channel in CHANNELS:
            msg = render(template, channel, language, variables, context)
            rendered[channel] = {"subject": msg.subject, "text": msg.text, "segments": msg.segments}
            if channel == "sms":
                note = length_note(msg, settings.public_url)
                rendered[channel]["note"] = note.ja() if note else None
        sms = rendered["sms"]
        sms["budget"] = sms_budget(template, language)
        sms["over_budget"] = sms["segments"] > sms["budget"]
        messages[language] = rendered
    labels = {v["name"]: v["label"] for t in template_choices() for v in t["variables"]}
    return {
        "template": template,
        "labels": {name: labels.get(name, name) for name in variables},
        "status": status,
        "channels": list(channels),
        "recipients": len(contacts),
        "organizations": len({c.organization_id for c in contacts}),
        "by_language": by_language,
        "messages": messages,
        "questions": _questions_by_kind(questions, _kinds(session, contacts)),
    }


def _kinds(session: Session, contacts: list[Target]) -> set[str]:
    org_ids = {c.organization_id for c in contacts}
    if not org_ids:
        return set()
    return set(session.scalars(select(Organization.kind).where(Organization.id.in_(org_ids))))


def questionnaire_choices() -> dict[str, str]:
    """The questionnaires an alert can carry, name → Japanese label."""
    return {name: q.label("ja") for name, q in load_all().items()}


def _questions_by_kind(names: tuple[str, ...], kinds: set[str]) -> dict[str, list[str]]:
    """For each kind of organization in the audience, the labels of the questions it will be
    asked (required ones marked), so the operator sees who is asked what before issuing."""
    if not names:
        return {}
    check_choice(names)
    by_kind = {}
    for kind in sorted(kinds):
        asked = questions_for(names, kind)
        if asked:
            by_kind[kind] = [q.label("ja") + ("（必須）" if q.required else "") for q in asked]
    return by_kind


PreviewError = (MessageError, AudienceError, ValueError)


def variable_fields(choices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One form field per variable name (a name means the same thing in every template), with
    the templates that take it, so the page shows only the selected template's fields."""
    fields: dict[str, dict[str, Any]] = {}
    for choice in choices:
        for var in choice["variables"]:
            entry = fields.setdefault(var["name"], {**var, "templates": [], "required_in": []})
            entry["templates"].append(choice["name"])
            if var["required"]:
                entry["required_in"].append(choice["name"])
    return list(fields.values())


# --- prepared alerts (drafts from JMA bulletins, issue 17) ------------------------------------


def draft_card(session: Session, settings: Settings, draft: AlertDraft) -> dict[str, Any]:
    """A draft as the dashboard and its confirmation page show it: the bulletin it came from,
    and the issue form's preview of its fields (the same rendering and audience resolution),
    or why it cannot be issued as it stands."""
    bulletin = session.get(JmaBulletin, draft.bulletin_id) if draft.bulletin_id else None
    fields = fields_of(draft)
    try:
        shown: dict[str, Any] | None = preview(
            session,
            settings,
            fields.template,
            fields.variables,
            fields.audience,
            fields.status,
            tuple(fields.channels),
            tuple(fields.questions),
        )
        error = None
    except PreviewError as exc:
        shown, error = None, str(exc)
    return {
        "draft": draft,
        "fields": fields,
        "bulletin": bulletin,
        "preview": shown,
        "error": error,
        "ack_minutes": draft.ack_within_s // 60,
    }


def draft_cards(session: Session, settings: Settings) -> list[dict[str, Any]]:
    return [draft_card(session, settings, d) for d in open_drafts(session)]


def draft_of_alert(session: Session, alert_id: int) -> AlertDraft | None:
    """The draft an alert was issued from, if it was."""
    return session.scalars(select(AlertDraft).where(AlertDraft.alert_id == alert_id)).first()
