"""Prepared alerts in the console (issue 17): a JMA bulletin that meets a `draft` rule leaves a
draft, shown at the top of the dashboard with its texts. 「この内容で発信」 opens one
confirmation page (実際の警報 or 訓練 in large letters), whose one POST issues it through
relay.alerts.drafts — the same service, and so the same audit events, as the API; 「破棄」
discards it. The operator then lands on the alert's live page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.alerts import drafts
from relay.models import AlertDraft
from relay.web.console import views
from relay.web.console.alerts import publish
from relay.web.console.deps import CSRF, DB, Operator, Reader
from relay.web.console.render import ConsoleError, page, redirect
from relay.web.ids import RowId

router = APIRouter()

DRAFT_STATE = {
    "open": "未発信",
    "issued": "発信済み",
    "discarded": "破棄済み",
    "withdrawn": "取り下げ（気象庁の取消など）",
}


def _draft(session: Session, draft_id: int) -> AlertDraft:
    draft = session.get(AlertDraft, draft_id)
    if draft is None:
        raise ConsoleError(404, "下書きが見つかりません", f"下書き {draft_id} はありません。")
    return draft


def _not_open(draft_id: int, state: str, alert_id: int | None, action: str) -> ConsoleError:
    done = f"（警報 {alert_id} として発令済み）" if alert_id else ""
    return ConsoleError(
        409,
        f"{action}できませんでした",
        f"下書き {draft_id} はすでに「{DRAFT_STATE.get(state, state)}」です{done}。"
        "何も送信・変更されていません。",
    )


def _refused(session: Session, draft_id: int, action: str, exc: drafts.DraftError) -> ConsoleError:
    state, alert_id = session.execute(
        select(AlertDraft.state, AlertDraft.alert_id).where(AlertDraft.id == draft_id)
    ).one()
    if state != drafts.OPEN:
        return _not_open(draft_id, state, alert_id, action)
    return ConsoleError(409, f"{action}できませんでした", f"{exc}。何も送信されていません。")


def _exists(session: Session, draft_id: int) -> None:
    # A column, not the row: the service reads the row itself under a lock (FOR UPDATE), and
    # an entity already in this session would keep its old state through that read.
    if session.scalar(select(AlertDraft.id).where(AlertDraft.id == draft_id)) is None:
        raise ConsoleError(404, "下書きが見つかりません", f"下書き {draft_id} はありません。")


@router.get("/drafts/{draft_id}")
def confirm_draft(request: Request, draft_id: RowId, session: DB, user: Reader) -> Response:
    """The one confirmation: what will be sent, to whom, and whether it is real."""
    draft = _draft(session, draft_id)
    if draft.state != drafts.OPEN:
        raise _not_open(draft.id, draft.state, draft.alert_id, "発信")
    return page(
        request,
        "draft_confirm.html",
        user=user,
        card=views.draft_card(session, request.app.state.settings, draft),
        can_act=user.role in ("operator", "admin"),
    )


@router.post("/drafts/{draft_id}/issue", dependencies=[CSRF])
async def issue_draft(request: Request, draft_id: RowId, session: DB, user: Operator) -> Response:
    data = await request.form()
    _exists(session, draft_id)
    if data.get("confirmed") != "yes":
        raise ConsoleError(
            422, "確認画面を経てから発信してください", "下書きは発信されていません。"
        )
    try:
        with session.begin_nested():
            alert = drafts.issue_draft(session, request.app.state.settings, draft_id, user.name)
    except drafts.DraftError as exc:
        raise _refused(session, draft_id, "発信", exc) from None
    session.commit()
    publish(request)
    return redirect(request, f"/console/alerts/{alert.id}?done=issued")


@router.post("/drafts/{draft_id}/discard", dependencies=[CSRF])
def discard_draft(request: Request, draft_id: RowId, session: DB, user: Operator) -> Response:
    _exists(session, draft_id)
    try:
        with session.begin_nested():
            drafts.discard_draft(session, draft_id, user.name)
    except drafts.DraftError as exc:
        raise _refused(session, draft_id, "破棄", exc) from None
    return redirect(request, "/console?done=discarded")
