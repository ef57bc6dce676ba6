"""Pages of the console: the Jinja environment, the Japanese labels, and the errors that end a
request with a Japanese page (403, 404, ...) instead of the API's JSON."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from relay.reports import labels_ja
from relay.timefmt import local
from relay.web.console import session as console_session
from relay.web.headers import nonce_of

TEMPLATES = Path(__file__).resolve().parents[3] / "templates" / "console"


def _tokyo(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return local(moment, fmt) if moment is not None else "—"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a typo in a template fails the test, not silently blank
)
_env.filters["tokyo"] = _tokyo
_env.globals.update(
    STATUS=labels_ja.STATUS,
    STATE=labels_ja.ALERT_STATE,
    MSG_TYPE=labels_ja.MSG_TYPE,
    CHANNEL=labels_ja.CHANNEL,
    COUNT=labels_ja.COUNT,
    MODE=labels_ja.MODE,
    ROLE=labels_ja.ROLE,
    LANGUAGE=labels_ja.LANGUAGE,
    KIND=labels_ja.KIND,
    RUN_STATE=labels_ja.RUN_STATE,
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
        csp_nonce=nonce_of(request.state),  # <script nonce=…> (relay/web/headers.py)
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Console pages show names and alert texts: keep them out of shared caches.
    response.headers["Cache-Control"] = "no-store"
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
