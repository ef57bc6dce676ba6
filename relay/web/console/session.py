"""The console's session cookie and CSRF token.

The cookie holds the signed-in user's id, a CSRF token, the time of sign-in, a fingerprint
of the user's password hash (a new password ends every session of that user) and the user's
session epoch at sign-in: signing out raises the user's epoch in the database, which ends
every session of that user at once — on every device, since a cookie cannot be revoked one by
one without a table of sessions, and a shared duty terminal signed out must be signed out.
It is signed with HMAC-SHA256 under a key derived from RELAY_SECRET_KEY — distinct from the
key of the acknowledgement links — and sent HttpOnly, SameSite=Lax, Secure when the public URL
is https.
Nothing secret is inside: it is signed, not encrypted.

Every POST carries the session's CSRF token in a hidden form field (`csrf_token`); a POST
without it, or with another, is refused before anything is read from or written to the
database. A visitor who is not signed in still gets a session (no user) so that the sign-in
form itself is protected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response

from relay.config import Settings

COOKIE = "relay_console"
LIFETIME_S = 12 * 3600  # one duty shift; then sign in again
CSRF_FIELD = "csrf_token"


@dataclass
class ConsoleSession:
    user_id: int | None = None
    password_tag: str = ""
    epoch: int = 0  # users.session_epoch at sign-in
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    issued: int = field(default_factory=lambda: int(time.time()))
    changed: bool = False  # set a new cookie with the response


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"relay-console-session\x00" + settings.secret_key.encode()).digest()


def password_tag(settings: Settings, password_hash: str | None) -> str:
    return hmac.new(_key(settings), (password_hash or "").encode(), "sha256").hexdigest()[:16]


def _sign(settings: Settings, payload: bytes) -> str:
    mac = hmac.new(_key(settings), payload, "sha256").digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def encode(settings: Settings, session: ConsoleSession) -> str:
    data = {
        "u": session.user_id,
        "p": session.password_tag,
        "e": session.epoch,
        "c": session.csrf,
        "t": session.issued,
    }
    payload = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    return payload.decode().rstrip("=") + "." + _sign(settings, payload.rstrip(b"="))


def decode(settings: Settings, value: str, now: float | None = None) -> ConsoleSession | None:
    """The session in a cookie, or None if it is forged, damaged or expired."""
    payload, _, mac = value.partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _sign(settings, payload.encode())):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = ConsoleSession(
            user_id=data["u"] if isinstance(data["u"], int) else None,
            password_tag=str(data["p"]),
            epoch=int(data.get("e", 0)),
            csrf=str(data["c"]),
            issued=int(data["t"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if (now or time.time()) - session.issued > LIFETIME_S:
        return None
    return session


def current(request: Request) -> ConsoleSession:
    """This request's session: from the cookie, else a new anonymous one (sent back)."""
    found: ConsoleSession | None = getattr(request.state, "console_session", None)
    if found is None:
        settings: Settings = request.app.state.settings
        found = decode(settings, request.cookies.get(COOKIE, ""))
        if found is None:
            found = ConsoleSession(changed=True)
        request.state.console_session = found
    return found


def start(request: Request, user_id: int, tag: str, epoch: int) -> ConsoleSession:
    """After a good sign-in: a new session (new CSRF token), so one planted before sign-in
    is worth nothing after it."""
    session = ConsoleSession(user_id=user_id, password_tag=tag, epoch=epoch, changed=True)
    request.state.console_session = session
    return session


def end(request: Request) -> None:
    request.state.console_session = ConsoleSession(changed=True)


def csrf_ok(request: Request, token: object) -> bool:
    expected = current(request).csrf
    return isinstance(token, str) and bool(token) and hmac.compare_digest(token, expected)


def attach(request: Request, response: Response) -> Response:
    """Send the session cookie with `response` when it is new or changed."""
    session: ConsoleSession | None = getattr(request.state, "console_session", None)
    if session is not None and session.changed:
        settings: Settings = request.app.state.settings
        response.set_cookie(
            COOKIE,
            encode(settings, session),
            max_age=LIFETIME_S,
            path="/console",
            httponly=True,
            samesite="lax",
            secure=settings.public_url.startswith("https://"),
        )
    return response
