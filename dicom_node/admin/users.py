"""Dashboard users: add, remove, change password, check a login.

Passwords are kept only as Argon2id hashes (argon2-cffi's defaults, RFC 9106's
second recommended profile); a check of an unknown name still spends one hash, so the
time of a failed login does not tell whether the name exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dicom_node.db import Database, Role
from dicom_node.db import users as user_rows

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()
# Verified against when the name is unknown: same cost as a real check.
_DUMMY_HASH = _HASHER.hash("no such user: constant-time refusal")


@dataclass(frozen=True)
class Identity:
    """Who is logged in."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        """True if this user may change the node."""
        return self.role is Role.ADMIN


def validate_user_name(name: str) -> str:
    """A user name: 1-64 letters, digits, ``.``, ``_``, ``@`` or ``-``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"invalid user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``; ``ValueError`` if it is too short or too long."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def add(database: Database, name: str, role: Role | str, password: str) -> dict[str, Any]:
    """Add a user with ``role``."""
    validate_user_name(name)
    try:
        role = Role(role)
    except ValueError as error:
        raise ValueError(f"unknown role {role!r}: admin or viewer") from error
    password_hash = hash_password(password)
    with database.sessions.begin() as session:
        user_rows.add_user(session, name, role, password_hash)
    return {"added": name, "role": role.value}


def remove(database: Database, name: str) -> dict[str, Any]:
    """Remove the user called ``name``."""
    with database.sessions.begin() as session:
        if not user_rows.remove_user(session, name):
            raise ValueError(f"no user called {name!r}")
    return {"removed": name}


def change_password(database: Database, name: str, password: str) -> dict[str, Any]:
    """Give ``name`` a new password."""
    password_hash = hash_password(password)
    with database.sessions.begin() as session:
        if not user_rows.set_password_hash(session, name, password_hash):
            raise ValueError(f"no user called {name!r}")
    return {"password_changed": name}


def listing(database: Database) -> dict[str, Any]:
    """Every user with role and creation time (never the hash)."""
    with database.reader() as session:
        users = user_rows.list_users(session)
        return {
            "users": [
                {"name": u.name, "role": u.role.value, "created_at": u.created_at.isoformat()}
                for u in users
            ]
        }


def any_user(database: Database) -> bool:
    """True once at least one user exists."""
    with database.reader() as session:
        return user_rows.count_users(session) > 0


def current_identity(database: Database, name: str, logged_in_at: datetime) -> Identity | None:
    """The user's identity now, ``None`` if removed or re-passworded since ``logged_in_at``.

    Checked on every request, so removing a user or changing a password (from the command
    line, another process) ends their sessions at once, and a role change applies at once.
    """
    with database.reader() as session:
        user = user_rows.find_user(session, name)
        if user is None or user.password_changed_at > logged_in_at:
            return None
        return Identity(user.name, user.role)


def authenticate(database: Database, name: str, password: str) -> Identity | None:
    """The identity of ``name`` if ``password`` is theirs, else ``None``."""
    with database.reader() as session:
        user = user_rows.find_user(session, name) if _NAME.match(name or "") else None
        stored = user.password_hash if user is not None else _DUMMY_HASH
        role = user.role if user is not None else None
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if role is None:
        return None
    return Identity(name, role)
