"""The HTTP API, `/api/v1` (SPEC 5.2): bearer tokens, roles, audit; JSON errors, never a 500
for bad input. Thin: every handler calls one relay service, in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from relay.accounts.users import UserError, allowed, authenticate, create_user
from relay.alerts import lifecycle
from relay.alerts.issuing import IssueError, IssueRequest, issue_alert
from relay.alerts.sms_length import sms_length_notes
from relay.alerts.status import alert_status
from relay.cap.export import MEDIA_TYPE as CAP_MEDIA_TYPE
from relay.cap.export import export_alert
from relay.cap.importing import AlreadyImported, CapImportError, import_alert
from relay.config import Settings
from relay.db import session_factory
from relay.delivery.runtime import Runtime
from relay.directory import store
from relay.directory.audience import AudienceError, parse_audience
from relay.directory.csv_format import DirectoryFileError, parse_directory
from relay.drills import service
from relay.durations import parse_duration
from relay.models import (
    Alert,
    AuditEvent,
    Contact,
    DrillRun,
    Organization,
    Recipient,
    User,
)
from relay.questions.catalog import AnswerError
from relay.replies import inbound_reports as reports_service
from relay.replies.answers import operator_answers
from relay.reports import tally
from relay.reports.answers import answer_tally
from relay.web import cap_http
from relay.web.ids import RowId
from relay.web.query_once import query_given_once

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every error: a message; validation errors add `details` (field, reason)."""

    model_config = ConfigDict(extra="allow")
    error: str


def error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented once for every route: any call can lack a token, lack the role or be malformed.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: error_doc("The body cannot be decoded (e.g. JSON that is not UTF-8)"),
    401: error_doc("No bearer token, or an unknown one"),
    403: error_doc("The token's role may not do this"),
    413: error_doc("Request body too large"),
    422: error_doc("Invalid request: the message (and details) say what"),
}
router = APIRouter(
    prefix="/api/v1",
    responses=COMMON_RESPONSES,
    dependencies=[Depends(query_given_once)],
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: error_doc("No such object")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: error_doc("Not possible in its current state")}
MAX_BODY = 2_000_000  # a directory CSV of ~20,000 contacts


def _session(request: Request) -> Iterator[Session]:
    """One transaction per request. Handlers that queue work commit first, then publish."""
    settings: Settings = request.app.state.settings
    with session_factory(settings.database_url)() as session:
        try:
            yield session
            session.commit()
        except DataError as exc:
            # A value the database cannot hold (PostgreSQL: text with a NUL character) is bad
            # input like any other: 422 with the reason, nothing written.
            session.rollback()
            reason = str(exc.orig).splitlines()[0] if exc.orig else "value out of range"
            raise HTTPException(422, f"a value cannot be stored: {reason}") from None
        except BaseException:
            session.rollback()
            raise


DB = Annotated[Session, Depends(_session)]


# Declares the bearer scheme in the OpenAPI description; the header is read below, so that a
# missing and a wrong token get their own message.
BEARER = HTTPBearer(
    auto_error=False, description="A token from `relay user create NAME --role ROLE`"
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def _user(request: Request, session: DB, declared: Credentials) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    user = authenticate(session, token.strip())
    if user is None:
        raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return user


def need(permission: str) -> Any:
    def check(user: Annotated[User, Depends(_user)]) -> User:
        if not allowed(user, permission):
            raise HTTPException(403, f"role {user.role} may not do this ({permission})")
        return user

    return Depends(check)


Reader = Annotated[User, need("read")]
Operator = Annotated[User, need("alerts")]
Coordinator = Annotated[User, need("drills")]
Admin = Annotated[User, need("directory")]


def issued(request: Request, session: Session, alert: Alert) -> dict[str, Any]:
    """Commit a new alert, queue it, and answer as POST /alerts does (with the SMS length
    notes an operator should see)."""
    settings = request.app.state.settings
    result = alert_status(session, alert)
    notes = []
    if "sms" in alert.channels:
        notes = sms_length_notes(settings, alert.template, alert.variables, alert.status)
    session.commit()
    publish(request)
    return {
        **{k: result[k] for k in ("id", "reference", "state", "recipients")},
        "sms_notes": [note.as_dict() for note in notes],
    }


def publish(request: Request) -> None:
    """After commit: queue what the transaction wrote; the sweeper retries on failure."""
    try:
        Runtime(request.app.state.settings).publish_outbox()
    except Exception as exc:  # broker down or no publisher in this process: the outbox keeps it
        log.warning("publish after commit deferred to the sweeper: %s", exc)


class StrictBody(BaseModel):
    """A request body that refuses fields it does not define: a misspelt `ack_witin` must be a
    422 naming it, never a silent default (an operator gets exactly the alert they wrote)."""

    model_config = ConfigDict(extra="forbid")


# --- alerts -----------------------------------------------------------------------------------


class IssueBody(StrictBody):
    template: str = Field(max_length=64)
    audience: str = Field(max_length=2000, examples=["kind:association+district:西柴"])
    variables: dict[str, str] = Field(default_factory=dict, max_length=20)
    channels: list[str] = Field(default=["sms", "voice", "email"], max_length=3)
    mode: str = "cascade"
    ack_within: str = "15m"
    status: str = "Actual"
    # One questionnaire's name, or several (issue 16): "damage-report", ["damage-report",
    # "base-status"].
    questions: str | list[str] = Field(default_factory=list, examples=["damage-report"])
    remind_after: str = "10m"
    reminders: int = Field(default=1, ge=0, le=2)


def _issue(session: Session, settings: Settings, body: IssueBody, actor: str) -> Alert:
    try:
        request = IssueRequest(
            template=body.template,
            audience=parse_audience(body.audience),
            variables=body.variables,
            channels=tuple(body.channels),
            mode=body.mode,
            ack_within=parse_duration(body.ack_within),
            status=body.status,
            issued_by=actor,
            questions=[body.questions] if isinstance(body.questions, str) else body.questions,
            remind_after=parse_duration(body.remind_after),
            reminders=body.reminders,
        )
        with session.begin_nested():
            return issue_alert(session, settings, request)
    except (IssueError, AudienceError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/alerts", status_code=201)
def issue(request: Request, body: IssueBody, session: DB, user: Operator) -> dict[str, Any]:
    settings = request.app.state.settings
    alert = _issue(session, settings, body, user.name)
    return issued(request, session, alert)


@router.get("/alerts")
def list_alerts(
    session: DB, _: Reader, limit: int = Query(50, ge=1, le=500)
) -> list[dict[str, Any]]:
    alerts = session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit))
    return [
        {
            "id": a.id,
            "reference": a.reference,
            "status": a.status,
            "msg_type": a.msg_type,
            "template": a.template,
            "state": a.state,
            "sent_at": a.sent_at.isoformat(),
        }
        for a in alerts
    ]


# Before /alerts/{alert_id}, which would otherwise take "7.cap" for an id.
@router.get(
    "/alerts/{alert_id}.cap",
    response_class=Response,
    responses={**cap_http.EXPORT_RESPONSES, **NOT_FOUND},
    summary="The alert as CAP 1.2 XML",
)
def export_cap(alert_id: RowId, session: DB, _: Reader) -> Response:
    document = export_alert(session, _alert(session, alert_id))
    return Response(document, media_type=CAP_MEDIA_TYPE)


@router.post(
    "/alerts/cap",
    status_code=201,
    description=cap_http.IMPORT_DESCRIPTION,
    openapi_extra=cap_http.IMPORT_OPENAPI,
    responses={
        409: error_doc(
            "This document (sender, identifier) was issued before: `alert` says as what"
        ),
        415: error_doc("The body is not XML"),
    },
    summary="Issue an alert from a CAP 1.2 document",
)
def import_cap(
    request: Request,
    session: DB,
    user: Operator,
    document: Annotated[bytes, Depends(cap_http.read_cap_body)],
    audience: Annotated[str, Query(max_length=2000, examples=["kind:hospital"])],
    channels: Annotated[list[str], Query(max_length=3)] = ["sms", "voice", "email"],  # noqa: B006
    mode: str = "cascade",
    ack_within: str = "15m",
) -> dict[str, Any]:
    # The body is CAP, so the relay's own settings ride in the query: a misspelt one must be
    # refused like an unknown body field, not leave its default in place.
    unknown = sorted(set(request.query_params) - {"audience", "channels", "mode", "ack_within"})
    if unknown:
        raise HTTPException(422, "unknown query parameter " + ", ".join(unknown))
    try:
        with session.begin_nested():
            alert = import_alert(
                session,
                request.app.state.settings,
                document,
                parse_audience(audience),
                [c.strip() for item in channels for c in item.split(",") if c.strip()],
                mode,
                parse_duration(ack_within),
                actor=user.name,
            )
    except AlreadyImported as exc:
        raise HTTPException(409, {"message": str(exc), "alert": exc.alert_id}) from None
    except (CapImportError, IssueError, AudienceError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    result = alert_status(session, alert)
    session.commit()
    publish(request)
    return {k: result[k] for k in ("id", "reference", "state", "recipients")} | {
        "identifier": alert.identifier
    }


def _alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return alert


@router.get("/alerts/{alert_id}", responses=NOT_FOUND)
def show_alert(alert_id: RowId, session: DB, _: Reader) -> dict[str, Any]:
    return alert_status(session, _alert(session, alert_id))


@router.get("/alerts/{alert_id}/recipients", responses=NOT_FOUND)
def recipients(alert_id: RowId, session: DB, _: Reader) -> list[dict[str, Any]]:
    _alert(session, alert_id)
    rows = session.execute(
        select(Recipient, Contact.name, Organization.code)
        .join(Contact, Contact.id == Recipient.contact_id)
        .join(Organization, Organization.id == Recipient.organization_id)
        .where(Recipient.alert_id == alert_id)
        .order_by(Recipient.position)
    ).all()
    return [
        {
            "id": r.id,
            "org": code,
            "contact": name,
            "state": r.state,
            "step": r.step,
            "reached_at": r.reached_at,
            "acknowledged_at": r.acknowledged_at,
            "ack_method": r.ack_method,
            "answer": r.ack_answer,
        }
        for r, name, code in rows
    ]


class UpdateBody(StrictBody):
    template: str = Field(max_length=64)
    variables: dict[str, str] = Field(default_factory=dict, max_length=20)


@router.post("/alerts/{alert_id}/update", status_code=201, responses={**NOT_FOUND, **CONFLICT})
def update_alert(
    request: Request, alert_id: RowId, body: UpdateBody, session: DB, user: Operator
) -> dict[str, Any]:
    _alert(session, alert_id)
    try:
        with session.begin_nested():
            alert = lifecycle.update_alert(
                session,
                request.app.state.settings,
                alert_id,
                body.template,
                body.variables,
                user.name,
            )
    except lifecycle.LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
    result = {"id": alert.id, "reference": alert.reference, "updates": alert_id}
    session.commit()
    publish(request)
    return result


@router.post("/alerts/{alert_id}/cancel", responses={**NOT_FOUND, **CONFLICT})
def cancel_alert(request: Request, alert_id: RowId, session: DB, user: Operator) -> dict[str, Any]:
    _alert(session, alert_id)
    try:
        with session.begin_nested():
            notice = lifecycle.cancel_alert(
                session, request.app.state.settings, alert_id, user.name
            )
    except lifecycle.LifecycleError as exc:
        raise HTTPException(409, str(exc)) from None
    result = {"id": alert_id, "state": "cancelled", "notice": notice.id if notice else None}
    session.commit()
    publish(request)
    return result


class AckBody(StrictBody):
    note: str = Field(min_length=1, max_length=1000)
    answer: str = Field(default="ack", max_length=32)


@router.post("/alerts/{alert_id}/recipients/{recipient_id}/ack", responses=NOT_FOUND)
def manual_ack(
    alert_id: RowId, recipient_id: RowId, body: AckBody, session: DB, user: Operator
) -> dict[str, Any]:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None or recipient.alert_id != alert_id:
        raise HTTPException(404, f"no recipient {recipient_id} in alert {alert_id}")
    org = session.get(Organization, recipient.organization_id)
    contact = session.get(Contact, recipient.contact_id)
    assert org is not None and contact is not None
    try:
        result = lifecycle.manual_ack(
            session, alert_id, org.code, user.name, body.note, contact.name, body.answer
        )
    except lifecycle.LifecycleError as exc:
        raise HTTPException(422, str(exc)) from None
    return result[0]


# --- situation reports (issue 16) --------------------------------------------------------


@router.get("/alerts/{alert_id}/answers", responses=NOT_FOUND)
def alert_answers(alert_id: RowId, session: DB, _: Reader) -> dict[str, Any]:
    """Per question: counts, sums and free-text needs, per district and kind; organizations
    with a critical answer; who acknowledged without answering the required questions."""
    return answer_tally(session, _alert(session, alert_id))


class AnswersBody(StrictBody):
    org: str = Field(min_length=1, max_length=40)
    answers: dict[str, int | str] = Field(min_length=1, max_length=9)


@router.post("/alerts/{alert_id}/answers", responses=NOT_FOUND)
def enter_answers(
    alert_id: RowId, body: AnswersBody, session: DB, user: Operator
) -> dict[str, Any]:
    """An operator enters an organization's answers heard by phone; audited."""
    alert = _alert(session, alert_id)
    try:
        with session.begin_nested():
            recorded = operator_answers(
                session, alert, body.org, body.answers, user.name, datetime.now(UTC)
            )
    except AnswerError as exc:
        raise HTTPException(422, str(exc)) from None
    session.commit()
    return {"org": body.org, "answers": recorded.values, "acknowledged": recorded.acknowledged}


# --- drills -------------------------------------------------------------------------------


class DrillBody(StrictBody):
    name: str = Field(min_length=1, max_length=100)
    cron: str = Field(max_length=100)
    template: str = "drill"
    audience: str = "all"
    channels: list[str] = Field(default=["sms", "voice", "email"], max_length=3)
    mode: str = "cascade"
    ack_within: str = "30m"
    enabled: bool = True


@router.get("/drills")
def list_drills(session: DB, _: Reader) -> list[dict[str, Any]]:
    return service.schedules_overview(session)


@router.post("/drills", status_code=201)
def save_drill(body: DrillBody, session: DB, user: Coordinator) -> dict[str, Any]:
    try:
        spec = service.ScheduleSpec(
            name=body.name,
            cron=body.cron,
            template=body.template,
            audience=body.audience,
            channels=tuple(body.channels),
            mode=body.mode,
            ack_within=parse_duration(body.ack_within),
            enabled=body.enabled,
        )
        with session.begin_nested():
            _, upcoming = service.save_schedule(session, spec, actor=user.name)
    except (service.DrillError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    return {"name": body.name, "next": [t.isoformat() for t in upcoming]}


@router.post("/drills/{name}/run", status_code=201, responses={**NOT_FOUND, **CONFLICT})
def run_drill(request: Request, name: str, session: DB, user: Coordinator) -> dict[str, Any]:
    try:
        with session.begin_nested():
            run = service.run_now(session, name, actor=user.name)
    except service.DrillError as exc:
        raise HTTPException(404 if "no drill" in str(exc) else 409, str(exc)) from None
    result = {"run_id": run.id}
    session.commit()
    publish(request)
    return result


@router.get("/drills/runs/{run_id}/report", responses={**NOT_FOUND, **CONFLICT})
def drill_report(run_id: RowId, session: DB, _: Reader) -> dict[str, Any]:
    if session.get(DrillRun, run_id) is None:
        raise HTTPException(404, f"no drill run {run_id}")
    try:
        return tally.drill_report(session, run_id)
    except tally.ReportError as exc:
        raise HTTPException(409, str(exc)) from None


# --- directory, reports, audit, users ------------------------------------------------------


@router.get("/directory")
def directory_summary(session: DB, _: Reader, district: str | None = None) -> dict[str, Any]:
    return store.summary(session, district)


@router.post(
    "/directory/import",
    description="The directory CSV as the body (columns: ops/sample/kanazawa-directory.csv).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "maxLength": MAX_BODY}}},
        }
    },
)
async def directory_import(
    request: Request, session: DB, user: Admin, dry_run: bool = False
) -> dict[str, Any]:
    data = await request.body()
    if len(data) > MAX_BODY:
        raise HTTPException(413, f"directory file larger than {MAX_BODY} bytes")
    try:
        parsed = parse_directory(data)
    except DirectoryFileError as exc:
        raise HTTPException(
            422, {"message": str(exc), "errors": [e.__dict__ for e in exc.errors]}
        ) from None
    if dry_run:
        return {
            "ok": True,
            "dry_run": True,
            "organizations": len(parsed.orgs),
            "contacts": len(parsed.contacts),
        }
    changes = store.apply_directory(session, parsed, actor=user.name, source="api")
    session.commit()
    return {"ok": True, **changes.as_dict()}


@router.get("/reports")
def inbound_reports(session: DB, _: Reader, open_only: bool = True) -> list[dict[str, Any]]:
    rows = reports_service.list_reports(session, "open" if open_only else "all", limit=500)
    return [
        {
            "id": r["id"],
            "org": r["org_code"],
            "alert": r["alert_reference"],
            "body": r["body"],
            "kind": r["kind"],
            "received_at": r["received_at"],
            "handled_at": r["handled_at"],
        }
        for r in rows
    ]


@router.post("/reports/{report_id}/handled", responses=NOT_FOUND)
def report_handled(report_id: RowId, session: DB, user: Operator) -> dict[str, Any]:
    try:
        message = reports_service.mark_handled(session, report_id, user.name)
    except LookupError:
        raise HTTPException(404, f"no report {report_id}") from None
    return {"id": report_id, "handled_by": message.handled_by}


@router.get("/audit")
def audit_log(
    session: DB, _: Admin, limit: int = Query(100, ge=1, le=1000)
) -> list[dict[str, Any]]:
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit))
    return [
        {
            "id": e.id,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "summary": e.summary,
            "details": e.details,  # e.g. draft.issue: the alert and the JMA bulletin behind it
            "at": e.at,
        }
        for e in events
    ]


class UserBody(StrictBody):
    name: str = Field(min_length=1, max_length=100)
    role: str


@router.post("/users", status_code=201)
def new_user(body: UserBody, session: DB, user: Admin) -> dict[str, Any]:
    try:
        with session.begin_nested():
            created, token = create_user(session, body.name, body.role, actor=user.name)
    except UserError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"name": created.name, "role": created.role, "token": token}
