"""Accounts of the dashboard: argon2id password hashes (argon2-cffi), roles, disabling (never deleting:
sign-offs name their author)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from sqlalchemy import select

from rtcheck.errors import StoreError
from rtcheck.store.database import ResultStore
from rtcheck.store.models import Role, User

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["MIN_PASSWORD_LENGTH", "add_user", "authenticate", "disable_user", "list_users"]

MIN_PASSWORD_LENGTH = 10  # rtcheck's default: NIST SP 800-63B asks for at least 8; accounts here can sign off plans
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


def add_user(store: ResultStore, username: str, password: str, role: Role) -> None:
    """Create an account; StoreError for a taken or malformed name or a short password."""
    if not _USERNAME.match(username):
        raise StoreError(f"user name {username!r}: use 1-64 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StoreError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    with store.session() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise StoreError(f"user {username!r} exists already")
        session.add(User(username=username, password_hash=_hasher().hash(password), role=role.value, active=True,
                         created_at=datetime.now(timezone.utc)))


def disable_user(store: ResultStore, username: str) -> None:
    """Disable an account: it can no longer log in, and its open sessions end at their next request."""
    with store.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise StoreError(f"no user {username!r}")
        user.active = False


def list_users(store: ResultStore) -> list[User]:
    with store.session() as session:
        return list(session.scalars(select(User).order_by(User.username)))


def authenticate(store: ResultStore, username: str, password: str) -> User | None:
    """The active account with this name and password, else None (same work whether or not the name exists)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    with store.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        stored = user.password_hash if user is not None else _DUMMY_HASH
        try:
            hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        if hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hasher.hash(password)
        return user


# Verified against when the user name is unknown, so that the answer takes as long as for a known name.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$0fWk6jV9e2JXh7d0XGEqrAfFDfaA7gqvQ7v3ZlqQh1w"
