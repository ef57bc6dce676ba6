"""Request dependencies of the console: the database session, the signed-in user, the role
check and the CSRF check. Refusals raise; the handlers in relay.web.console answer them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from relay.accounts.users import allowed
from relay.config import Settings
from relay.db import session_factory
from relay.models import User
from relay.reports.labels_ja import ROLE
from relay.web.console import session as console_session
from relay.web.console.render import ConsoleError, NotSignedIn


@dataclass(frozen=True)
class Who:
    """Who is signed in, as the page header shows it (detached from any database session)."""

    name: str
    role: str


# What each console action needs (relay/users.py PERMISSIONS), in words for the 403 page.
NEEDS = {
    "read": "閲覧",
    "alerts": "警報の発令・更新・取消・手動確認（操作員・管理者）",
    "drills": "訓練の管理（訓練担当・管理者）",
    "directory": "名簿の管理（管理者）",
    "users": "利用者の管理（管理者）",
}


def _db(request: Request) -> Iterator[Session]:
    """One transaction per request, committed when the handler returns without error."""
    settings: Settings = request.app.state.settings
    with session_factory(settings.database_url)() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


DB = Annotated[Session, Depends(_db)]


def _user(request: Request, session: DB) -> User:
    settings: Settings = request.app.state.settings
    state = console_session.current(request)
    if state.user_id is None:
        raise NotSignedIn()
    user = session.get(User, state.user_id)
    if (
        user is None
        or not user.active
        or not user.password_hash
        or console_session.password_tag(settings, user.password_hash) != state.password_tag
        or user.session_epoch != state.epoch  # signed out since
    ):
        console_session.end(request)
        raise NotSignedIn()
    # For the error pages, which render after this request's session has closed.
    request.state.console_user = Who(user.name, user.role)
    return user


def need(permission: str) -> Any:
    def check(user: Annotated[User, Depends(_user)]) -> User:
        if not allowed(user, permission):
            raise ConsoleError(
                403,
                "この操作を行う権限がありません",
                f"{user.name} さんの役割は「{ROLE.get(user.role, user.role)}」です。"
                f"この操作には「{NEEDS[permission]}」の権限が必要です。",
            )
        return user

    return Depends(check)


async def _csrf(request: Request) -> None:
    """Every POST: the hidden field must carry this session's token (checked before the
    user and before any change, so a forged request changes nothing)."""
    form = await request.form()
    if not console_session.csrf_ok(request, form.get(console_session.CSRF_FIELD)):
        raise ConsoleError(
            403,
            "フォームの確認に失敗しました",
            "ページの有効期限が切れたか、別のサイトから送信されました（CSRF）。"
            "ページを開き直してからもう一度操作してください。何も変更されていません。",
        )


CSRF = Depends(_csrf)
Reader = Annotated[User, need("read")]
Operator = Annotated[User, need("alerts")]
Coordinator = Annotated[User, need("drills")]
