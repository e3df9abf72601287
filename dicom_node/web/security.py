"""Sessions, CSRF tokens and login throttling of the dashboard.

Sessions live server-side: the cookie carries only a random token (``HttpOnly``,
``SameSite=Strict``, ``Secure`` under TLS), so logging out or removing a user ends a
session at once. A login is also written to the node's database (the token only as its
SHA-256, ``dicom_node.db.web_logins``), so it outlives a restart of ``serve``; logout
deletes it there too. Anonymous sessions (the login form's CSRF token) and the notices
of the next page stay in memory only. Every form carries the session's CSRF token; the
login form gets an anonymous session for it, replaced by a fresh one on success (no
session fixation).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dicom_node.admin.users import Identity
from dicom_node.db import Database
from dicom_node.db import web_logins as login_rows
from dicom_node.db.types import utc_now

COOKIE_NAME = "blsnode_session"
_TOKEN_BYTES = 32
# Anonymous sessions only carry the login form's CSRF token: short-lived, and capped so
# a client fetching the login page in a loop cannot grow memory without bound.
ANONYMOUS_LIFETIME_S = 1800.0
MAX_SESSIONS = 10_000


@dataclass
class WebSession:
    """One browser's session: who (``None`` before login), its CSRF token, its expiry."""

    token: str
    csrf: str
    expires_at: float
    identity: Identity | None = None
    # Wall-clock time of the login: a password changed later ends the session.
    logged_in_at: datetime = field(default_factory=utc_now)
    # Messages for the next page (the outcome of a form, shown after its redirect).
    notices: list[str] = field(default_factory=list)

    def csrf_matches(self, submitted: str | None) -> bool:
        """Constant-time comparison of a submitted form token with the session's."""
        return submitted is not None and hmac.compare_digest(self.csrf, submitted)


@dataclass
class SessionStore:
    """Server-side sessions by token; logins also in ``database``, when given.

    ``clock`` is wall-clock seconds: a stored login's expiry must mean the same after a
    restart.
    """

    lifetime_s: float
    clock: Callable[[], float] = time.time
    database: Database | None = None
    _sessions: dict[str, WebSession] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, identity: Identity | None) -> WebSession:
        """A new session with fresh token and CSRF token."""
        lifetime = self.lifetime_s if identity is not None else ANONYMOUS_LIFETIME_S
        session = WebSession(
            token=secrets.token_urlsafe(_TOKEN_BYTES),
            csrf=secrets.token_urlsafe(_TOKEN_BYTES),
            expires_at=self.clock() + lifetime,
            identity=identity,
        )
        with self._lock:
            self._drop_expired()
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
                del self._sessions[oldest.token]
            self._sessions[session.token] = session
        if identity is not None and self.database is not None:
            with self.database.sessions.begin() as db:
                login_rows.save_login(
                    db,
                    session.token,
                    session.csrf,
                    identity.name,
                    identity.role,
                    session.logged_in_at,
                    _wall(session.expires_at),
                )
        return session

    def get(self, token: str | None) -> WebSession | None:
        """The live session of ``token``, ``None`` if unknown or expired."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
        if session is None:
            session = self._stored(token)
            if session is None:
                return None
        if session.expires_at <= self.clock():
            self.end(token)
            return None
        return session

    def end(self, token: str | None) -> None:
        """Forget a session (logout), in memory and in the database."""
        if not token:
            return
        with self._lock:
            self._sessions.pop(token, None)
        if self.database is not None:
            with self.database.sessions.begin() as db:
                login_rows.end_login(db, token)

    def _stored(self, token: str) -> WebSession | None:
        """A login from the database (made before a restart), cached in memory."""
        if self.database is None:
            return None
        with self.database.reader() as db:
            row = login_rows.find_login(db, token, _wall(self.clock()))
            if row is None:
                return None
            session = WebSession(
                token=token,
                csrf=row.csrf,
                expires_at=row.expires_at.timestamp(),
                identity=Identity(row.user_name, row.role),
                logged_in_at=row.logged_in_at,
            )
        with self._lock:
            return self._sessions.setdefault(token, session)

    def _drop_expired(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[token]


def _wall(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class LoginThrottle:
    """Refuses logins for a key (an address, a user name) after too many recent failures."""

    attempts: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blocked(self, *keys: str) -> bool:
        """True if any key has had ``attempts`` failures within the window."""
        with self._lock:
            return any(self._count(key) >= self.attempts for key in keys)

    def failed(self, *keys: str) -> None:
        """Record one failed login for each key."""
        with self._lock:
            now = self.clock()
            for key in keys:
                self._count(key)
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _count(self, key: str) -> int:
        """Failures of ``key`` within the window; older ones (and empty keys) are dropped."""
        failures = self._failures.get(key)
        if failures is None:
            return 0
        limit = self.clock() - self.window_s
        while failures and failures[0] <= limit:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return len(failures)
