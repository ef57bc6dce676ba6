"""Sign-in and sign-out (user name and password; relay/passwords.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import update

from relay import audit
from relay.accounts.passwords import sign_in
from relay.config import Settings
from relay.models import User
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
    address = request.client.host if request.client else ""
    blocked = throttle.blocked(name, address)
    if blocked:
        return page(
            request,
            "login.html",
            status_code=429,
            next=_safe_next(next),
            error=(
                "この端末からのサインインの失敗が続いたため、このユーザー名はこの端末から"
                if blocked == "name"
                else "この端末（アドレス）からのサインインの失敗が続いたため、"
            )
            + "しばらく使えません。15分ほど待つか、別の端末からお試しください。",
            name=name,
        )
    user = sign_in(session, name, password) if name and password else None
    if user is None:
        throttle.failed(name, address)
        return page(
            request,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            error="ユーザー名またはパスワードが正しくありません。",
            name=name,
        )
    throttle.succeeded(name, address)
    settings: Settings = request.app.state.settings
    console_session.start(
        request,
        user.id,
        console_session.password_tag(settings, user.password_hash),
        user.session_epoch,
    )
    audit.record(session, user.name, "user.sign_in", target=f"user {user.name}", summary="console")
    return redirect(request, _safe_next(next))


@router.post("/logout", dependencies=[CSRF])
def logout(request: Request, session: DB) -> Response:
    """Ends every session of the user (relay/web/console/session.py), not just this cookie:
    a copy of it, or the same user's session on another terminal, is signed out too."""
    state = console_session.current(request)
    if state.user_id is not None:
        changed = session.execute(
            update(User)
            .where(User.id == state.user_id, User.session_epoch == state.epoch)
            .values(session_epoch=User.session_epoch + 1)
            .returning(User.name)
        ).scalar_one_or_none()
        if changed is not None:
            audit.record(session, changed, "user.sign_out", target=f"user {changed}")
    console_session.end(request)
    return redirect(request, "/console/login")
