"""Console passwords: scrypt (stdlib) with a per-user random salt.

Stored as `scrypt$<log2 n>$<r>$<p>$<salt>$<hash>` (base64), so the cost can be raised later
without breaking stored hashes. API users keep their bearer tokens (relay/users.py); a password
is what lets a person sign in to the web console, and a user without one cannot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.models import User

log = logging.getLogger(__name__)

MIN_LENGTH = 10
MAX_LENGTH = 200
# n = 2^15, r = 8: 32 MiB and ~0.1 s per check on this machine; slow for a guesser, quick for
# a person signing in.
_LOG_N, _R, _P = 15, 8, 1
_MAXMEM = 64 * 1024 * 1024


class PasswordError(ValueError):
    """The password cannot be set; the message says why."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _scrypt(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=1 << log_n, r=r, p=p, maxmem=_MAXMEM, dklen=32
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _LOG_N, _R, _P)
    return f"scrypt${_LOG_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, log_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(log_n), int(r), int(p))
        return hmac.compare_digest(computed, base64.b64decode(digest))
    except (ValueError, TypeError):  # a damaged hash never signs anyone in
        return False


@cache
def _dummy() -> str:
    """Checked against when the user does not exist, so that a wrong name costs as much time
    as a wrong password and response times do not tell which names exist. Made on first use:
    every `relay` command imports this module, and a hash costs ~0.1 s."""
    return hash_password(secrets.token_urlsafe(16))


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"password: at most {MAX_LENGTH} characters")
    if not password.strip():
        raise PasswordError("password: not only spaces")


def set_password(session: Session, name: str, password: str, actor: str) -> User:
    """Set (or replace) a user's console password; audited, the password never logged."""
    check_policy(password)
    user = session.scalars(select(User).where(User.name == name)).first()
    if user is None:
        raise PasswordError(f"no user {name!r}")
    user.password_hash = hash_password(password)
    audit.record(session, actor, "user.password", target=f"user {name}", summary="password set")
    return user


def sign_in(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (whichever part was wrong)."""
    user = session.scalars(select(User).where(User.name == name, User.active)).first()
    stored = user.password_hash if user is not None and user.password_hash else _dummy()
    ok = verify_password(password, stored)
    if user is None or not user.password_hash or not ok:
        log.warning("console sign-in refused for user name %r", name[:100])
        return None
    return user
