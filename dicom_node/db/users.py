"""Dashboard users: the rows behind ``blsnode users`` and the web login."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dicom_node.db.models import Role, User
from dicom_node.db.types import utc_now


def find_user(session: Session, name: str) -> User | None:
    """The user called ``name``, if there is one."""
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def add_user(
    session: Session, name: str, role: Role, password_hash: str, now: datetime | None = None
) -> User:
    """Add a user; ``ValueError`` if the name is taken."""
    if find_user(session, name) is not None:
        raise ValueError(f"a user called {name!r} already exists")
    when = now or utc_now()
    user = User(
        name=name,
        role=Role(role),
        password_hash=password_hash,
        created_at=when,
        password_changed_at=when,
    )
    session.add(user)
    session.flush()
    return user


def remove_user(session: Session, name: str) -> bool:
    """Delete the user called ``name``; ``False`` if there was none."""
    user = find_user(session, name)
    if user is None:
        return False
    session.delete(user)
    return True


def set_password_hash(
    session: Session, name: str, password_hash: str, now: datetime | None = None
) -> bool:
    """Replace a user's password hash; ``False`` if there is no such user."""
    user = find_user(session, name)
    if user is None:
        return False
    user.password_hash = password_hash
    user.password_changed_at = now or utc_now()
    return True


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def count_users(session: Session) -> int:
    """How many users exist (the dashboard starts only when at least one does)."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)
