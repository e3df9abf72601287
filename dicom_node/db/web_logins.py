"""Logged-in dashboard sessions, by the SHA-256 of their cookie token."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dicom_node.db.models import Role, WebLogin


def token_hash(token: str) -> str:
    """What is stored of a cookie token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def save_login(
    session: Session,
    token: str,
    csrf: str,
    user_name: str,
    role: Role,
    logged_in_at: datetime,
    expires_at: datetime,
) -> None:
    """Store a new login; expired logins of anyone are swept on the way."""
    session.execute(delete(WebLogin).where(WebLogin.expires_at <= logged_in_at))
    session.add(
        WebLogin(
            token_hash=token_hash(token),
            csrf=csrf,
            user_name=user_name,
            role=Role(role),
            logged_in_at=logged_in_at,
            expires_at=expires_at,
        )
    )


def find_login(session: Session, token: str, now: datetime) -> WebLogin | None:
    """The unexpired login of ``token``, or ``None``."""
    return session.scalars(
        select(WebLogin).where(WebLogin.token_hash == token_hash(token), WebLogin.expires_at > now)
    ).one_or_none()


def end_login(session: Session, token: str) -> None:
    """Delete the login of ``token`` (logout), if it is stored."""
    session.execute(delete(WebLogin).where(WebLogin.token_hash == token_hash(token)))
