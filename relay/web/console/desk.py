"""Inbound reports (mark handled) and drills (schedules, run now, the report page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape
from sqlalchemy.orm import Session

from relay.alerts.issuing import CHANNELS, MODES
from relay.drills import service
from relay.durations import parse_duration
from relay.models import DrillRun
from relay.replies import inbound_reports
from relay.reports import formats, tally
from relay.web.console import session as console_session
from relay.web.console import views
from relay.web.console.alerts import publish
from relay.web.console.deps import CSRF, DB, Coordinator, Operator, Reader
from relay.web.console.render import ConsoleError, page, redirect
from relay.web.ids import RowId

router = APIRouter()


@router.get("/reports")
def report_list(request: Request, session: DB, user: Reader, done: str = "") -> Response:
    return page(
        request,
        "reports.html",
        user=user,
        open_reports=inbound_reports.list_reports(session, "open"),
        handled=inbound_reports.list_reports(session, "handled", limit=30),
        done="対応済みにしました。" if done == "handled" else None,
        can_act=user.role in ("operator", "admin"),
    )


@router.post("/reports/{report_id}/handled", dependencies=[CSRF])
def report_handled(request: Request, report_id: RowId, session: DB, user: Operator) -> Response:
    try:
        inbound_reports.mark_handled(session, report_id, user.name)
    except LookupError:
        raise ConsoleError(
            404, "報告が見つかりません", f"報告 {report_id} はありません。"
        ) from None
    return redirect(request, "/console/reports?done=handled")


DRILL_DONE = {
    "run": "訓練を開始しました。数秒後に実施の一覧に表示されます。",
    "saved": "訓練の日程を保存しました。",
}


@dataclass
class ScheduleForm:
    name: str = ""
    cron: str = "0 10 1-7 1,4,7,10 1"  # the first Monday of each quarter, 10:00
    template: str = "drill"
    audience: str = "all"
    channels: list[str] = field(default_factory=lambda: list(CHANNELS))
    mode: str = "cascade"
    ack_within: str = "30m"
    enabled: bool = True


def _drill_templates() -> list[dict[str, Any]]:
    """A schedule has no variables to give: only templates that need none."""
    return [t for t in views.template_choices() if not any(v["required"] for v in t["variables"])]


def _drills_page(
    request: Request,
    session: Session,
    user: Any,
    form: ScheduleForm | None = None,
    error: str | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "drills.html",
        status_code=status_code,
        user=user,
        schedules=service.schedules_overview(session),
        done=DRILL_DONE.get(done or ""),
        can_run=user.role in ("coordinator", "admin"),
        form=form or ScheduleForm(),
        error=error,
        templates=_drill_templates(),
        channels=CHANNELS,
        modes=MODES,
    )


@router.get("/drills")
def drill_list(request: Request, session: DB, user: Reader, done: str = "") -> Response:
    return _drills_page(request, session, user, done=done)


@router.post("/drills", dependencies=[CSRF])
async def drill_save(request: Request, session: DB, user: Coordinator) -> Response:
    """Create or replace a schedule (relay.drills.service.save_schedule, audited drill.schedule)."""
    data = await request.form()
    form = ScheduleForm(
        name=str(data.get("name") or "").strip()[:100],
        cron=str(data.get("cron") or "").strip()[:100],
        template=str(data.get("template") or ""),
        audience=str(data.get("audience") or "").strip()[:2000],
        channels=[str(c) for c in data.getlist("channels")][:3],
        mode=str(data.get("mode") or ""),
        ack_within=str(data.get("ack_within") or "").strip()[:16],
        enabled=data.get("enabled") == "yes",
    )
    try:
        if form.template not in {t["name"] for t in _drill_templates()}:
            raise ValueError("テンプレートを選んでください。")
        if not form.channels or any(c not in CHANNELS for c in form.channels):
            raise ValueError("送信手段を1つ以上選んでください。")
        if form.mode not in MODES:
            raise ValueError("送信方式を選んでください。")
        spec = service.ScheduleSpec(
            name=form.name,
            cron=form.cron,
            template=form.template,
            audience=form.audience,
            channels=tuple(form.channels),
            mode=form.mode,
            ack_within=parse_duration(form.ack_within),
            enabled=form.enabled,
        )
        with session.begin_nested():
            service.save_schedule(session, spec, actor=user.name)
    except (service.DrillError, ValueError) as exc:
        return _drills_page(request, session, user, form, str(exc), status_code=422)
    return redirect(request, "/console/drills?done=saved")


@router.post("/drills/{name}/run", dependencies=[CSRF])
def drill_run(request: Request, name: str, session: DB, user: Coordinator) -> Response:
    try:
        with session.begin_nested():
            service.run_now(session, name, actor=user.name)
    except service.DrillError as exc:
        raise ConsoleError(409, "訓練を開始できませんでした", str(exc)) from None
    session.commit()
    publish(request)
    return redirect(request, "/console/drills?done=run")


@router.get("/drills/runs/{run_id}/report")
def drill_report(request: Request, run_id: RowId, session: DB, user: Reader) -> Response:
    """The drill report's own HTML page (relay/reports/formats.py, charts included), with a
    way back to the console on top."""
    if session.get(DrillRun, run_id) is None:
        raise ConsoleError(404, "訓練の実施記録が見つかりません", f"実施 {run_id} はありません。")
    try:
        report = tally.drill_report(session, run_id)
    except tally.ReportError:
        raise ConsoleError(
            404, "まだ結果がありません", "この訓練はまだ警報を発令していません。"
        ) from None
    html = formats.to_html(report)
    back = (
        '<nav style="font:14px sans-serif;padding:.4rem 1rem;background:#1e3a8a">'
        '<a style="color:#fff" href="/console/drills">← 訓練一覧に戻る</a>'
        f'<span style="color:#cbd5e1;margin-left:1rem">{escape(user.name)}</span></nav>'
    )
    at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
    response = HTMLResponse(html[:at] + back + html[at:])
    response.headers["Cache-Control"] = "no-store"
    return console_session.attach(request, response)
