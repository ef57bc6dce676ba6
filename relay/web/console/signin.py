"""Sign-in and sign-out (user name and password; relay/passwords.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from relay import audit
from relay.accounts.passwords import sign_in
from relay.config import Settings
from relay.web.console import session as console_session
from relay.web.console.deps import CSRF, DB
from relay.web.console.render import page, redirect
from relay.web.console.throttle import SignInThrottle

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only back into the console: never an open redirect to another site."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


@router.get("/login")
def login_form(request: Request, next: str = "/console") -> Response:
    return page(request, "login.html", next=_safe_next(next), error=None, name="")


@router.post("/login", dependencies=[CSRF])
def login(
    request: Request,
    session: DB,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console",
) -> Response:
    name, password = name.strip()[:100], password[:200]
    throttle: SignInThrottle = request.app.state.console_throttle
    if throttle.blocked(name):
        return page(
            request,
            "login.html",
            status_code=429,
            next=_safe_next(next),
            error="サインインの失敗が続いたため、このユーザー名はしばらく使えません。"
            "15分ほど待ってからもう一度お試しください。",
            name=name,
        )
    user = sign_in(session, name, password) if name and password else None
    if user is None:
        throttle.failed(name)
        return page(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="ユーザー名またはパスワードが正しくありません。",
            name=name,
        )
    throttle.succeeded(name)
    settings: Settings = request.app.state.settings
    console_session.start(
        request, user.id, console_session.password_tag(settings, user.password_hash)
    )
    audit.record(session, user.name, "user.sign_in", target=f"user {user.name}", summary="console")
    return redirect(request, _safe_next(next))


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request) -> Response:
    console_session.end(request)
    return redirect(request, "/console/login")
