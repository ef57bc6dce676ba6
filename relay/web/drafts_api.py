"""Prepared alerts in the API, `/api/v1/drafts` (issue 17): a JMA bulletin that meets a `draft`
rule leaves a draft; viewers list it, an operator issues it as it stands (the ordinary issue
path) or discards it. relay.alerts.drafts does the work and writes the audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.alerts import drafts
from relay.directory.audience import AudienceError, parse_audience, resolve
from relay.models import AlertDraft, JmaBulletin
from relay.timefmt import TOKYO
from relay.web.api import (
    COMMON_RESPONSES,
    CONFLICT,
    DB,
    NOT_FOUND,
    Operator,
    Reader,
    error_doc,
    issued,
)
from relay.web.ids import RowId
from relay.web.query_once import query_given_once

router = APIRouter(
    prefix="/api/v1",
    tags=["drafts"],
    responses=COMMON_RESPONSES,
    dependencies=[Depends(query_given_once)],
)

DraftState = Literal["open", "issued", "discarded", "withdrawn", "all"]


def _tokyo(moment: datetime | None) -> str | None:
    return moment.astimezone(TOKYO).isoformat() if moment is not None else None


def _ack_within(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def reach(session: Session, audience: str) -> dict[str, Any]:
    """Whom the draft's audience selects in the directory as it is now (it may have changed
    since the bulletin came): organizations and people, or why it selects nobody."""
    try:
        targets = resolve(session, parse_audience(audience))
    except AudienceError as exc:
        return {"organizations": 0, "recipients": 0, "error": str(exc)}
    return {
        "organizations": len({t.organization_id for t in targets}),
        "recipients": len(targets),
        "error": None,
    }


def describe(
    session: Session,
    draft: AlertDraft,
    bulletin: JmaBulletin | None,
    reached: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": draft.id,
        "state": draft.state,
        "created_at": _tokyo(draft.created_at),
        "template": draft.template,
        "variables": dict(draft.variables),
        "audience": draft.audience,
        "channels": list(draft.channels),
        "mode": draft.mode,
        "status": draft.status,
        "questions": list(draft.questions),
        "ack_within": _ack_within(draft.ack_within_s),
        "rule": draft.rule,
        "summary": draft.summary,
        "bulletin": None
        if bulletin is None
        else {
            "id": bulletin.id,
            "title": bulletin.title,
            "office": bulletin.office,
            "status": bulletin.status,
            "info_type": bulletin.info_type,
            "report_at": _tokyo(bulletin.report_at),
            "headline": bulletin.headline,
        },
        "alert_id": draft.alert_id,
        "decided_by": draft.decided_by,
        "decided_at": _tokyo(draft.decided_at),
        "reach": reached if reached is not None else reach(session, draft.audience),
    }


@router.get("/drafts", summary="Prepared alerts (open ones unless `state` says otherwise)")
def list_drafts(
    session: DB,
    _: Reader,
    state: DraftState = "open",
    limit: int = Query(50, ge=1, le=500),
) -> list[dict[str, Any]]:
    """Newest first, each with its bulletin and whom its audience reaches now."""
    stmt = (
        select(AlertDraft, JmaBulletin)
        .outerjoin(JmaBulletin, JmaBulletin.id == AlertDraft.bulletin_id)
        .order_by(AlertDraft.id.desc())
        .limit(limit)
    )
    if state != "all":
        stmt = stmt.where(AlertDraft.state == state)
    reached: dict[str, dict[str, Any]] = {}  # one resolution per audience
    out = []
    for draft, bulletin in session.execute(stmt).all():
        if draft.audience not in reached:
            reached[draft.audience] = reach(session, draft.audience)
        out.append(describe(session, draft, bulletin, reached[draft.audience]))
    return out


def _exists(session: Session, draft_id: int) -> None:
    # A column, not the row: the service locks and reads the row itself (FOR UPDATE), and an
    # entity already in this session would keep its old state through that read.
    if session.scalar(select(AlertDraft.id).where(AlertDraft.id == draft_id)) is None:
        raise HTTPException(404, f"no draft {draft_id}")


def _conflict(session: Session, draft_id: int, exc: drafts.DraftError) -> HTTPException:
    state, alert_id = session.execute(
        select(AlertDraft.state, AlertDraft.alert_id).where(AlertDraft.id == draft_id)
    ).one()
    return HTTPException(409, {"message": str(exc), "state": state, "alert": alert_id})


@router.get("/drafts/{draft_id}", responses=NOT_FOUND)
def show_draft(draft_id: RowId, session: DB, _: Reader) -> dict[str, Any]:
    row = session.execute(
        select(AlertDraft, JmaBulletin)
        .outerjoin(JmaBulletin, JmaBulletin.id == AlertDraft.bulletin_id)
        .where(AlertDraft.id == draft_id)
    ).one_or_none()
    if row is None:
        raise HTTPException(404, f"no draft {draft_id}")
    return describe(session, row[0], row[1])


@router.post(
    "/drafts/{draft_id}/issue",
    status_code=201,
    responses={
        **NOT_FOUND,
        409: error_doc(
            "The draft is not open (already issued, discarded or withdrawn: `state` and "
            "`alert` say), or cannot be issued as it stands (e.g. its audience selects nobody)"
        ),
    },
    summary="Issue the draft as it stands (the operator's one confirmation)",
)
def issue_draft(request: Request, draft_id: RowId, session: DB, user: Operator) -> dict[str, Any]:
    settings = request.app.state.settings
    _exists(session, draft_id)
    try:
        with session.begin_nested():
            alert = drafts.issue_draft(session, settings, draft_id, user.name)
    except drafts.DraftError as exc:
        raise _conflict(session, draft_id, exc) from None
    return {**issued(request, session, alert), "draft": draft_id}


@router.post(
    "/drafts/{draft_id}/discard",
    responses={**NOT_FOUND, **CONFLICT},
    summary="Discard the draft: nothing is sent",
)
def discard_draft(draft_id: RowId, session: DB, user: Operator) -> dict[str, Any]:
    _exists(session, draft_id)
    try:
        with session.begin_nested():
            draft = drafts.discard_draft(session, draft_id, user.name)
    except drafts.DraftError as exc:
        raise _conflict(session, draft_id, exc) from None
    return {"id": draft.id, "state": draft.state, "decided_by": draft.decided_by}
