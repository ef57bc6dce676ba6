"""Alerts in the console: the dashboard (prepared alerts from JMA bulletins on top: their
actions are in relay.web.console.drafts), issuing (form → live preview → confirmation → issue),
an alert's live page and its JSON, manual acknowledgement, cancel and update.

Every change goes through the same services as the API and the CLI (relay.alerts.issuing,
relay.alerts.lifecycle), so it writes the same audit events; the transaction is committed before its
tasks are published (the outbox), as everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, QueryParams

from relay.alerts import lifecycle
from relay.alerts.issuing import CHANNELS, MODES, STATUSES, IssueError, IssueRequest, issue_alert
from relay.config import Settings
from relay.delivery.runtime import Runtime
from relay.directory.audience import AudienceError, parse_audience
from relay.durations import parse_duration
from relay.messages import MessageError
from relay.models import Alert
from relay.reports.labels_ja import ALERT_STATE
from relay.web.console import views
from relay.web.console.deps import CSRF, DB, Operator, Reader
from relay.web.console.render import ConsoleError, page, redirect
from relay.web.ids import RowId

log = logging.getLogger(__name__)
router = APIRouter()

DONE_MESSAGES = {
    "issued": "発令しました。送信状況はこのページで自動更新されます。",
    "ack": "手動で応答確認を記録しました。",
    "cancel": "警報を取り消しました。送信済みの相手には取消の連絡を送ります。",
    "update": "更新を発令しました（この警報が最新です）。",
    "discarded": "下書きを破棄しました。何も送信されていません。",
}


def publish(request: Request) -> None:
    """After commit: queue what the transaction wrote; the scheduler's sweeper retries."""
    settings: Settings = request.app.state.settings
    try:
        Runtime(settings).publish_outbox()
    except Exception as exc:  # broker down, or no publisher in this process: the outbox keeps it
        log.warning("publish after commit deferred to the sweeper: %s", exc)


# --- the issue form ---------------------------------------------------------------------------


@dataclass
class IssueForm:
    """The issue form's fields as the operator typed them (strings), for re-display."""

    template: str = "earthquake"
    audience: str = ""
    status: str = "Exercise"  # the safer default: a slip of the hand sends a drill
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    mode: str = "cascade"
    ack_within: str = "15m"
    variables: dict[str, str] = field(default_factory=dict)
    questions: list[str] = field(default_factory=list)  # questionnaires (issue 16)

    @classmethod
    def read(cls, data: FormData | QueryParams) -> IssueForm:
        template = str(data.get("template") or "")[:64]
        allowed = {
            v["name"]
            for t in views.template_choices()
            if t["name"] == template
            for v in t["variables"]
        }
        variables = {}
        for name in sorted(allowed):
            value = str(data.get(f"var_{name}") or "").strip()[:200]
            if value:
                variables[name] = value
        return cls(
            template=template,
            audience=str(data.get("audience") or "").strip()[:2000],
            status=str(data.get("status") or ""),
            channels=[str(c) for c in data.getlist("channels")][:3],
            mode=str(data.get("mode") or ""),
            ack_within=str(data.get("ack_within") or "").strip()[:16],
            variables=variables,
            questions=[str(q)[:64] for q in data.getlist("questions")][:5],
        )

    def check(self) -> None:
        """What issue_alert checks too, said in Japanese before anything is resolved."""
        if self.template not in {t["name"] for t in views.template_choices()}:
            raise ValueError("テンプレートを選んでください。")
        if self.status not in STATUSES:
            raise ValueError("種別（実際の警報・訓練・テスト）を選んでください。")
        if not self.channels or any(c not in CHANNELS for c in self.channels):
            raise ValueError("送信手段（SMS・音声電話・メール）を1つ以上選んでください。")
        if self.mode not in MODES:
            raise ValueError("送信方式を選んでください。")
        if not self.audience:
            raise ValueError("送信先を入力してください（例: district:西柴、all）。")
        parse_duration(self.ack_within)
        if any(q not in views.questionnaire_choices() for q in self.questions):
            raise ValueError("質問票を一覧から選んでください。")

    def request(self, actor: str) -> IssueRequest:
        return IssueRequest(
            template=self.template,
            audience=parse_audience(self.audience),
            variables=self.variables,
            channels=tuple(self.channels),
            mode=self.mode,
            ack_within=parse_duration(self.ack_within),
            status=self.status,
            issued_by=actor,
            questions=tuple(self.questions),
        )


def _preview(session: Session, settings: Settings, form: IssueForm) -> dict[str, Any]:
    form.check()
    return views.preview(
        session,
        settings,
        form.template,
        form.variables,
        form.audience,
        form.status,
        tuple(form.channels),
        tuple(form.questions),
    )


def _form_page(
    request: Request, user: Any, form: IssueForm, error: str | None, status_code: int = 200
) -> Response:
    return page(
        request,
        "issue.html",
        status_code=status_code,
        user=user,
        form=form,
        error=error,
        templates=views.template_choices(),
        fields=views.variable_fields(views.template_choices()),
        statuses=STATUSES,
        channels=CHANNELS,
        modes=MODES,
        questionnaires=views.questionnaire_choices(),
    )


@router.get("")
def dashboard(request: Request, session: DB, user: Reader, done: str = "") -> Response:
    return page(
        request,
        "dashboard.html",
        user=user,
        drafts=views.draft_cards(session, request.app.state.settings),
        can_act=user.role in ("operator", "admin"),
        active=views.alert_rows(session, open_only=True),
        recent=views.alert_rows(session, open_only=False, limit=20),
        done=DONE_MESSAGES.get(done),
    )


@router.get("/alerts/new")
def new_alert(request: Request, user: Operator) -> Response:
    form = IssueForm()
    return _form_page(request, user, form, None)


@router.get("/alerts/preview.json")
def preview_json(request: Request, session: DB, user: Operator) -> Response:
    """The live preview of the issue form (GET: it changes nothing)."""
    form = IssueForm.read(request.query_params)
    try:
        return JSONResponse(_preview(session, request.app.state.settings, form))
    except (MessageError, AudienceError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)


@router.post("/alerts/confirm", dependencies=[CSRF])
async def confirm_alert(request: Request, session: DB, user: Operator) -> Response:
    """The confirmation step: what will be sent, to how many, and whether it is real."""
    form = IssueForm.read(await request.form())
    try:
        preview = _preview(session, request.app.state.settings, form)
    except (MessageError, AudienceError, ValueError) as exc:
        return _form_page(request, user, form, str(exc), status_code=422)
    return page(request, "confirm.html", user=user, form=form, preview=preview)


@router.post("/alerts", dependencies=[CSRF])
async def issue(request: Request, session: DB, user: Operator) -> Response:
    data = await request.form()
    form = IssueForm.read(data)
    if data.get("confirmed") != "yes":
        return _form_page(request, user, form, "確認画面を経てから発令してください。", 422)
    try:
        form.check()
        with session.begin_nested():
            alert = issue_alert(session, request.app.state.settings, form.request(user.name))
    except (IssueError, AudienceError, ValueError) as exc:
        return _form_page(request, user, form, str(exc), status_code=422)
    session.commit()
    publish(request)
    return redirect(request, f"/console/alerts/{alert.id}?done=issued")


# --- one alert --------------------------------------------------------------------------------


def _alert(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise ConsoleError(404, "警報が見つかりません", f"警報 {alert_id} はありません。")
    return alert


def _still_open(alert: Alert, action: str) -> None:
    if alert.state not in views.OPEN_STATES:
        state = ALERT_STATE.get(alert.state, alert.state)
        raise ConsoleError(409, f"{action}できませんでした", f"この警報はすでに「{state}」です。")


@router.get("/alerts/{alert_id}")
def alert_page(
    request: Request, alert_id: RowId, session: DB, user: Reader, done: str = ""
) -> Response:
    alert = _alert(session, alert_id)
    superseded_by = None
    if alert.state in ("closed", "cancelled"):
        superseded_by = session.scalars(
            select(Alert).where(Alert.supersedes_id == alert.id).order_by(Alert.id)
        ).first()
    return page(
        request,
        "alert.html",
        user=user,
        alert=alert,
        live=views.live(session, alert),
        superseded_by=superseded_by,
        from_draft=views.draft_of_alert(session, alert.id),
        templates=views.template_choices(),
        fields=views.variable_fields(views.template_choices()),
        done=DONE_MESSAGES.get(done),
        can_act=user.role in ("operator", "admin"),
    )


@router.get("/alerts/{alert_id}/live.json")
def alert_live(alert_id: RowId, session: DB, user: Reader) -> dict[str, Any]:
    return views.live(session, _alert(session, alert_id))


@router.post("/alerts/{alert_id}/ack", dependencies=[CSRF])
async def manual_ack(request: Request, alert_id: RowId, session: DB, user: Operator) -> Response:
    data = await request.form()
    _alert(session, alert_id)
    org = str(data.get("org") or "").strip()[:64]
    note = str(data.get("note") or "").strip()[:1000]
    if not note:
        raise ConsoleError(
            422,
            "メモを入力してください",
            "誰が・どのように確認したかを記録します（例: 電話で会長に確認）。",
        )
    try:
        with session.begin_nested():
            lifecycle.manual_ack(session, alert_id, org, user.name, note)
    except lifecycle.LifecycleError as exc:
        raise ConsoleError(422, "応答確認を記録できませんでした", str(exc)) from None
    return redirect(request, f"/console/alerts/{alert_id}?done=ack")


@router.post("/alerts/{alert_id}/cancel", dependencies=[CSRF])
async def cancel(request: Request, alert_id: RowId, session: DB, user: Operator) -> Response:
    data = await request.form()
    _still_open(_alert(session, alert_id), "取消")
    if data.get("confirm") != "yes":
        raise ConsoleError(
            422, "取消の確認にチェックを入れてください", "警報は取り消されていません。"
        )
    try:
        with session.begin_nested():
            lifecycle.cancel_alert(session, request.app.state.settings, alert_id, user.name)
    except lifecycle.LifecycleError as exc:
        raise ConsoleError(409, "取り消せませんでした", str(exc)) from None
    session.commit()
    publish(request)
    return redirect(request, f"/console/alerts/{alert_id}?done=cancel")


@router.post("/alerts/{alert_id}/update", dependencies=[CSRF])
async def update(request: Request, alert_id: RowId, session: DB, user: Operator) -> Response:
    data = await request.form()
    earlier = _alert(session, alert_id)
    _still_open(earlier, "更新")
    form = IssueForm.read(data)
    try:
        with session.begin_nested():
            alert = lifecycle.update_alert(
                session,
                request.app.state.settings,
                earlier.id,
                form.template,
                form.variables,
                user.name,
            )
    except lifecycle.LifecycleError as exc:
        raise ConsoleError(409, "更新できませんでした", str(exc)) from None
    session.commit()
    publish(request)
    return redirect(request, f"/console/alerts/{alert.id}?done=update")
