"""Inbound reports (mark handled) and drills (schedules, run now, the report page)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape

from relay import drills, inbound_reports, report_formats, reports
from relay.models import DrillRun
from relay.web.console import session as console_session
from relay.web.console.alerts import publish
from relay.web.console.deps import CSRF, DB, Coordinator, Operator, Reader
from relay.web.console.render import ConsoleError, page, redirect

router = APIRouter()


@router.get("/reports")
def report_list(request: Request, session: DB, user: Reader, done: str = "") -> Response:
    return page(
        request,
        "reports.html",
        user=user,
        open_reports=inbound_reports.list_reports(session, open_only=True),
        handled=inbound_reports.list_reports(session, open_only=False, limit=30),
        done="対応済みにしました。" if done == "handled" else None,
        can_act=user.role in ("operator", "admin"),
    )


@router.post("/reports/{report_id}/handled", dependencies=[CSRF])
def report_handled(request: Request, report_id: int, session: DB, user: Operator) -> Response:
    try:
        inbound_reports.mark_handled(session, report_id, user.name)
    except LookupError:
        raise ConsoleError(
            404, "報告が見つかりません", f"報告 {report_id} はありません。"
        ) from None
    return redirect(request, "/console/reports?done=handled")


@router.get("/drills")
def drill_list(request: Request, session: DB, user: Reader, done: str = "") -> Response:
    return page(
        request,
        "drills.html",
        user=user,
        schedules=drills.schedules_overview(session),
        done="訓練を開始しました。数秒後に実施中の一覧に表示されます。" if done == "run" else None,
        can_run=user.role in ("coordinator", "admin"),
    )


@router.post("/drills/{name}/run", dependencies=[CSRF])
def drill_run(request: Request, name: str, session: DB, user: Coordinator) -> Response:
    try:
        with session.begin_nested():
            drills.run_now(session, name, actor=user.name)
    except drills.DrillError as exc:
        raise ConsoleError(409, "訓練を開始できませんでした", str(exc)) from None
    session.commit()
    publish(request)
    return redirect(request, "/console/drills?done=run")


@router.get("/drills/runs/{run_id}/report")
def drill_report(request: Request, run_id: int, session: DB, user: Reader) -> Response:
    """The drill report's own HTML page (relay/report_formats.py, charts included), with a
    way back to the console on top."""
    if session.get(DrillRun, run_id) is None:
        raise ConsoleError(404, "訓練の実施記録が見つかりません", f"実施 {run_id} はありません。")
    try:
        report = reports.drill_report(session, run_id)
    except reports.ReportError:
        raise ConsoleError(
            404, "まだ結果がありません", "この訓練はまだ警報を発令していません。"
        ) from None
    html = report_formats.to_html(report)
    back = (
        '<nav style="font:14px sans-serif;padding:.4rem 1rem;background:#1e3a8a">'
        '<a style="color:#fff" href="/console/drills">← 訓練一覧に戻る</a>'
        f'<span style="color:#cbd5e1;margin-left:1rem">{escape(user.name)}</span></nav>'
    )
    at = html.find(">", html.find("<body")) + 1 if "<body" in html else 0
    response = HTMLResponse(html[:at] + back + html[at:])
    response.headers["Cache-Control"] = "no-store"
    return console_session.attach(request, response)
