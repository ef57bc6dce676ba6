"""API users: a name, a role, a bearer token shown once and stored only as a hash.

Roles: viewer reads; operator also issues, updates, cancels and acknowledges alerts;
coordinator also manages drills; admin may do everything, including the directory and users.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay import audit
from relay.models import ROLES, User

PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "alerts": frozenset({"operator", "admin"}),
    "drills": frozenset({"coordinator", "admin"}),
    "directory": frozenset({"admin"}),
    "users": frozenset({"admin"}),
}


class UserError(ValueError):
    pass


def token_hash(token: str) -> str:
    # Tokens are 256-bit random strings: a fast hash is enough (no password to stretch).
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: str, actor: str) -> tuple[User, str]:
    """Create a user; return it with its token, which is never stored or shown again."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise UserError("name: 1-100 characters")
    if session.scalars(select(User).where(User.name == name)).first():
        raise UserError(f"user {name!r} already exists")
    token = "rly_" + secrets.token_urlsafe(32)
    user = User(name=name, role=role, token_hash=token_hash(token))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", target=f"user {name}", summary=f"role {role}")
    return user, token


def authenticate(session: Session, token: str) -> User | None:
    digest = token_hash(token)
    user = session.scalars(select(User).where(User.token_hash == digest, User.active)).first()
    if user is None or not hmac.compare_digest(user.token_hash, digest):
        return None
    return user


def allowed(user: User, permission: str) -> bool:
    return user.role in PERMISSIONS[permission]
