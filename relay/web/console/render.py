"""Pages of the console: the Jinja environment, the Japanese labels, and the errors that end a
request with a Japanese page (403, 404, ...) instead of the API's JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from relay.timefmt import local
from relay.web.console import session as console_session

TEMPLATES = Path(__file__).resolve().parents[3] / "templates" / "console"

STATUS_LABELS = {"Actual": "実際の警報", "Exercise": "訓練", "Test": "テスト"}
STATE_LABELS = {
    "draft": "下書き",
    "dispatching": "送信準備中",
    "active": "送信・応答受付中",
    "closed": "終了",
    "cancelled": "取消済み",
}
MSG_TYPE_LABELS = {"Alert": "発令", "Update": "更新", "Cancel": "取消"}
CHANNEL_LABELS = {"sms": "SMS", "voice": "音声電話", "email": "メール"}
COUNT_LABELS = {
    "planned": "計画",
    "pending": "送信待ち",
    "sent": "送信済み",
    "delivered": "配信確認",
    "reached": "本人に到達",
    "failed": "不達",
}
MODE_LABELS = {"cascade": "段階送信（未応答なら電話・次の連絡先へ）", "blast": "一斉送信"}
ROLE_LABELS = {
    "viewer": "閲覧者",
    "operator": "操作員",
    "coordinator": "訓練担当",
    "admin": "管理者",
}
LANGUAGE_LABELS = {"ja": "日本語", "en": "英語", "ja-easy": "やさしい日本語"}
KIND_LABELS = {
    "ward_office": "区役所",
    "federation": "地区連合町内会",
    "association": "自治会町内会",
    "disaster_base": "地域防災拠点",
    "care_plaza": "地域ケアプラザ",
    "facility": "施設",
    "shelter": "避難所",
    "hospital": "災害拠点病院",
}
RUN_STATE_LABELS = {
    "pending": "開始待ち",
    "running": "実施中",
    "done": "完了",
    "missed": "未実施（停止中）",
    "failed": "失敗",
}


def _tokyo(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return local(moment, fmt) if moment is not None else "—"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a typo in a template fails the test, not silently blank
)
_env.filters["tokyo"] = _tokyo
_env.globals.update(
    STATUS=STATUS_LABELS,
    STATE=STATE_LABELS,
    MSG_TYPE=MSG_TYPE_LABELS,
    CHANNEL=CHANNEL_LABELS,
    COUNT=COUNT_LABELS,
    MODE=MODE_LABELS,
    ROLE=ROLE_LABELS,
    LANGUAGE=LANGUAGE_LABELS,
    KIND=KIND_LABELS,
    RUN_STATE=RUN_STATE_LABELS,
    CSRF_FIELD=console_session.CSRF_FIELD,
)


class ConsoleError(Exception):
    """Ends the request with a Japanese error page."""

    def __init__(self, status_code: int, title: str, message: str = "") -> None:
        super().__init__(title)
        self.status_code, self.title, self.message = status_code, title, message


class NotSignedIn(Exception):
    """No valid session: pages go to the sign-in form, JSON endpoints answer 401."""


def page(
    request: Request,
    template: str,
    status_code: int = 200,
    user: Any = None,  # a User, or deps.Who on error pages
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(
        user=user,
        csrf=console_session.current(request).csrf,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Console pages show names and alert texts: keep them out of shared caches.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    console_session.attach(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    return console_session.attach(request, RedirectResponse(url, status_code=303))


def error_page(request: Request, exc: ConsoleError, user: Any = None) -> HTMLResponse:
    return page(
        request,
        "error.html",
        status_code=exc.status_code,
        user=user,
        title=exc.title,
        message=exc.message,
    )
