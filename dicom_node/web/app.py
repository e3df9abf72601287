"""The dashboard's routes: login, status, jobs, dispatches, destinations, rules, models, results.

Every page needs a logged-in user; every form is a POST that carries the session's CSRF
token; every POST that changes the node needs the ``admin`` role and writes one audit
line (logger ``dicom_node.web.audit``). Pages read the node through the admin functions
(``dicom_node.admin``), the same ones the ``blsnode`` commands call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dicom_node.admin import destinations as destination_admin
from dicom_node.admin import instance_results as result_admin
from dicom_node.admin import jobs as job_admin
from dicom_node.admin import rules as rule_admin
from dicom_node.admin.users import Identity, authenticate, current_identity
from dicom_node.db import Database, DispatchState, JobState
from dicom_node.settings import DestinationSettings, ResultKind, SendWhat, Settings
from dicom_node.web import pictures
from dicom_node.web.security import COOKIE_NAME, LoginThrottle, SessionStore, WebSession

_Result = TypeVar("_Result")

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("dicom_node.web.audit")

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
LIST_LIMIT = 200
# What the browser may load: this origin only, no scripts at all, no framing.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class ModelsProvider(Protocol):
    """The models page's source; the application supplies it (reading it needs torch)."""

    def listing(self) -> dict[str, Any]:
        """``{"registry", "in_use": {kind: {"name", "reason"}}, "models": [...]}``."""

    def promote(self, name: str) -> dict[str, Any]:
        """Promote model ``name``; ``ValueError`` naming the problem if it cannot be."""


@dataclass(frozen=True)
class WebContext:
    """What the dashboard reads from: settings, database, live status, models."""

    settings: Settings
    database: Database
    status: Callable[[], dict[str, Any]]
    health: Callable[[], tuple[bool, dict[str, Any]]] | None = None
    models: ModelsProvider | None = None


class LoginRequiredError(Exception):
    """Raised by a page that needs a user; answered with a redirect to the login page."""


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())
            await send(message)

        await self.app(scope, receive, with_headers)


def audit(identity: Identity, action: str, target: str, outcome: str, request: Request) -> None:
    """One line per admin action: who, what, on what, from where, with what outcome."""
    address = request.client.host if request.client else "-"
    audit_logger.info(
        "audit user=%s action=%s target=%s outcome=%s address=%s",
        identity.name,
        action,
        target,
        outcome,
        address,
        extra={"user": identity.name, "action": action, "target": target, "outcome": outcome},
    )


class Dashboard:
    """The routes, bound to one ``WebContext`` and its session store."""

    def __init__(self, context: WebContext) -> None:
        self.context = context
        web = context.settings.web
        self.sessions = SessionStore(web.session_hours * 3600.0, database=context.database)
        self.throttle = LoginThrottle(web.login_attempts, web.login_window_s)
        self.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
        self.secure_cookie = web.tls

    # --- sessions and checks -------------------------------------------------------

    def _session(self, request: Request) -> WebSession | None:
        return self.sessions.get(request.cookies.get(COOKIE_NAME))

    async def _user(self, request: Request) -> WebSession:
        """The session of a logged-in user whose account is unchanged since the login."""
        session = self._session(request)
        if session is None or session.identity is None:
            raise LoginRequiredError
        identity = await run_in_threadpool(
            current_identity, self.context.database, session.identity.name, session.logged_in_at
        )
        if identity is None:
            self.sessions.end(session.token)
            raise LoginRequiredError
        session.identity = identity
        return session

    async def _form(self, request: Request, admin: bool) -> tuple[WebSession, FormData]:
        """The form of a POST by a logged-in user with a valid CSRF token (and admin role)."""
        session = await self._user(request)
        form = await request.form()
        token = form.get("csrf")
        if not session.csrf_matches(token if isinstance(token, str) else None):
            raise HTTPException(403, "invalid or missing CSRF token; reload the page")
        assert session.identity is not None  # checked by _user
        if admin and not session.identity.is_admin:
            audit(session.identity, request.url.path, "-", "refused: not admin", request)
            raise HTTPException(403, "this action needs the admin role")
        return session, form

    def _page(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        session = self._session(request)
        notices = session.notices[:] if session is not None else []
        if session is not None:
            session.notices.clear()
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "user": session.identity if session else None,
                "csrf": session.csrf if session else "",
                "notices": notices,
                **values,
            },
            status_code=status_code,
        )

    async def _audited(
        self,
        request: Request,
        session: WebSession,
        entry: tuple[str, str, str],
        back: str,
        call: Callable[[], _Result],
        done: Callable[[_Result], str],
        refused: str,
    ) -> RedirectResponse:
        """Run an admin action off the event loop, write its audit line, go back to
        ``back`` with a notice. ``entry``: action, target and the outcome on success; a
        ``ValueError`` is audited as refused and shown after ``refused``."""
        action, target, outcome = entry
        assert session.identity is not None
        try:
            result = await run_in_threadpool(call)
        except (ValueError, ValidationError) as error:
            audit(session.identity, action, target, "refused", request)
            return self._back(session, back, f"{refused}: {_first_line(error)}")
        audit(session.identity, action, target, outcome, request)
        return self._back(session, back, done(result))

    def _back(self, session: WebSession, url: str, notice: str) -> RedirectResponse:
        session.notices.append(notice)
        return RedirectResponse(url, status_code=303)

    def _set_cookie(self, response: Response, session: WebSession) -> None:
        response.set_cookie(
            COOKIE_NAME,
            session.token,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            path="/",
        )

    # --- login ---------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        """The login form (with an anonymous session carrying its CSRF token)."""
        session = self._session(request)
        if session is not None and session.identity is not None:
            return RedirectResponse("/", status_code=303)
        if session is None:
            session = self.sessions.create(None)
        response = self.templates.TemplateResponse(
            request,
            "login.html",
            {"user": None, "csrf": session.csrf, "notices": [], "next": _safe_next(request)},
        )
        self._set_cookie(response, session)
        return response

    async def login(self, request: Request) -> Response:
        """Check the password (throttled); on success a fresh session replaces the old."""
        session = self._session(request)
        form = await request.form()
        token = form.get("csrf")
        if session is None or not session.csrf_matches(token if isinstance(token, str) else None):
            raise HTTPException(403, "invalid or missing CSRF token; reload the login page")
        name = str(form.get("name") or "")
        password = str(form.get("password") or "")
        address = request.client.host if request.client else "-"
        keys = (f"address:{address}", f"user:{name}")
        if self.throttle.blocked(*keys):
            logger.warning("login refused (throttled) for %r from %s", name, address)
            return self._login_error(
                request, session, "Too many failed logins; wait and retry.", 429
            )
        identity = await run_in_threadpool(authenticate, self.context.database, name, password)
        if identity is None:
            self.throttle.failed(*keys)
            logger.warning("failed login for %r from %s", name, address)
            return self._login_error(request, session, "Wrong name or password.", 401)
        self.throttle.succeeded(*keys)
        self.sessions.end(session.token)
        fresh = self.sessions.create(identity)
        logger.info("login of %s (%s) from %s", identity.name, identity.role.value, address)
        response = RedirectResponse(_safe_next(request, form.get("next")), status_code=303)
        self._set_cookie(response, fresh)
        return response

    def _login_error(
        self, request: Request, session: WebSession, message: str, status_code: int
    ) -> Response:
        return self.templates.TemplateResponse(
            request,
            "login.html",
            {"user": None, "csrf": session.csrf, "notices": [], "error": message, "next": "/"},
            status_code=status_code,
        )

    async def logout(self, request: Request) -> Response:
        """End the session."""
        session, _ = await self._form(request, admin=False)
        self.sessions.end(session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    # --- status --------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        """Queues, workers, disk, and the last failures."""
        await self._user(request)
        database = self.context.database
        report = await run_in_threadpool(self.context.status)
        health = await run_in_threadpool(self.context.health) if self.context.health else None
        failed = await run_in_threadpool(job_admin.list_jobs, database, JobState.FAILED, 10)
        dead = await run_in_threadpool(
            result_admin.list_dispatches, database, DispatchState.DEAD, 10
        )
        return self._page(
            request,
            "status.html",
            status=report,
            health=health[1] if health else None,
            failed_jobs=failed["jobs"],
            dead_dispatches=dead["dispatches"],
        )

    # --- jobs ----------------------------------------------------------------------

    async def jobs(self, request: Request) -> Response:
        """Jobs, newest first, filtered by state."""
        return await self._state_listing(request, JobState, job_admin.list_jobs, "jobs")

    async def _state_listing(
        self, request: Request, states: type[Enum], lister: Any, key: str
    ) -> Response:
        """The page ``<key>.html`` of what ``lister`` returns under ``key``, by state."""
        await self._user(request)
        state = _enum_or_none(states, request.query_params.get("state"))
        listing = await run_in_threadpool(lister, self.context.database, state, LIST_LIMIT)
        return self._page(
            request,
            f"{key}.html",
            **{key: listing[key]},
            state=state.value if state else "",
            states=[s.value for s in states],
        )

    async def job(self, request: Request) -> Response:
        """One job with its instance, outputs and dispatches."""
        await self._user(request)
        job_id = _int_param(request, "job_id")
        details = await run_in_threadpool(job_admin.show_job, self.context.database, job_id)
        if details is None:
            raise HTTPException(404, f"no job {job_id}")
        return self._page(request, "job.html", job=details)

    async def retry_job(self, request: Request) -> Response:
        """Re-queue a failed job (and revive its dead dispatches)."""
        session, _ = await self._form(request, admin=True)
        job_id = _int_param(request, "job_id")
        report = await run_in_threadpool(
            lambda: job_admin.retry(self.context.settings, self.context.database, [job_id])
        )
        outcome = f"requeued {report['requeued_jobs']} revived {report['revived_dispatches']}"
        assert session.identity is not None
        audit(session.identity, "job.retry", str(job_id), outcome, request)
        return self._back(session, f"/jobs/{job_id}", f"Job {job_id}: {outcome}.")

    # --- dispatches ----------------------------------------------------------------

    async def dispatches(self, request: Request) -> Response:
        """Dispatches, newest first, filtered by state (``dead`` for the dead letters)."""
        return await self._state_listing(
            request, DispatchState, result_admin.list_dispatches, "dispatches"
        )

    async def retry_dispatch(self, request: Request) -> Response:
        """Revive a dead dispatch and publish it."""
        session, _ = await self._form(request, admin=True)
        dispatch_id = _int_param(request, "dispatch_id")
        report = await run_in_threadpool(
            lambda: job_admin.retry(
                self.context.settings, self.context.database, dispatch_ids=[dispatch_id]
            )
        )
        outcome = f"revived {report['revived_dispatches']}"
        assert session.identity is not None
        audit(session.identity, "dispatch.retry", str(dispatch_id), outcome, request)
        return self._back(session, "/dispatches", f"Dispatch {dispatch_id}: {outcome}.")

    # --- destinations --------------------------------------------------------------

    async def destinations(self, request: Request) -> Response:
        """Every destination; forms to add, remove and C-ECHO."""
        await self._user(request)
        listing = await run_in_threadpool(
            destination_admin.listing, self.context.settings, self.context.database
        )
        return self._page(
            request,
            "destinations.html",
            destinations=listing["destinations"],
            send_choices=[s.value for s in SendWhat],
            result_kinds=[kind.value for kind in ResultKind],
        )

    async def add_destination(self, request: Request) -> Response:
        """Add a destination from the form."""
        session, form = await self._form(request, admin=True)
        name = str(form.get("name") or "")

        def add() -> None:
            destination = DestinationSettings(**_destination_fields(form))
            destination_admin.add(self.context.settings, self.context.database, destination)

        return await self._audited(
            request,
            session,
            ("destination.add", name, "added"),
            "/destinations",
            add,
            done=lambda _: f"Destination {name} added.",
            refused="Not added",
        )

    async def remove_destination(self, request: Request) -> Response:
        """Remove a destination added from the command line or the dashboard."""
        session, _ = await self._form(request, admin=True)
        name = request.path_params["name"]
        return await self._audited(
            request,
            session,
            ("destination.remove", name, "removed"),
            "/destinations",
            lambda: destination_admin.remove(self.context.settings, self.context.database, name),
            done=lambda _: f"Destination {name} removed.",
            refused="Not removed",
        )

    async def echo_destination(self, request: Request) -> Response:
        """C-ECHO a destination."""
        session, _ = await self._form(request, admin=True)
        assert session.identity is not None
        name = request.path_params["name"]
        try:
            result = await run_in_threadpool(
                destination_admin.echo_destination,
                self.context.settings,
                self.context.database,
                name,
            )
        except ValueError as error:
            return self._back(session, "/destinations", f"C-ECHO not sent: {error}")
        text = (
            f"ok in {result['seconds'] * 1000:.0f} ms"
            if result["ok"]
            else f"FAILED ({result['error']})"
        )
        audit(
            session.identity, "destination.echo", name, "ok" if result["ok"] else "failed", request
        )
        return self._back(session, "/destinations", f"C-ECHO {name}: {text}")

    # --- rules ---------------------------------------------------------------------

    async def rules(self, request: Request) -> Response:
        """The routing rules, and a form to test a stored instance against them."""
        await self._user(request)
        return self._rules_page(request, None, None)

    async def test_rules(self, request: Request) -> Response:
        """Apply the rules to a stored instance (changes nothing, so viewers may too)."""
        _, form = await self._form(request, admin=False)
        try:
            instance_id = int(str(form.get("instance_id") or ""))
            verdict = await run_in_threadpool(
                rule_admin.check_rules, self.context.settings, self.context.database, instance_id
            )
        except ValueError as error:
            return self._rules_page(request, None, f"Cannot test: {error}", 400)
        return self._rules_page(request, verdict, None)

    def _rules_page(
        self,
        request: Request,
        verdict: dict[str, Any] | None,
        error: str | None,
        status_code: int = 200,
    ) -> Response:
        rules = [rule.model_dump(mode="json") for rule in self.context.settings.rules]
        return self._page(
            request, "rules.html", status_code, rules=rules, verdict=verdict, error=error
        )

    # --- models --------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        """The model in use per kind and why, every model with its card's metrics."""
        await self._user(request)
        provider = self.context.models
        listing: dict[str, Any] | None = None
        error = None
        if provider is None:
            error = "No model registry is attached to this dashboard."
        else:
            try:
                listing = await run_in_threadpool(provider.listing)
            except ValueError as failure:
                error = str(failure)
        return self._page(request, "models.html", listing=listing, error=error)

    async def promote(self, request: Request) -> Response:
        """Promote a model."""
        session, _ = await self._form(request, admin=True)
        name = request.path_params["name"]
        provider = self.context.models
        if provider is None:
            raise HTTPException(404, "no model registry is attached")
        return await self._audited(
            request,
            session,
            ("model.promote", name, "promoted"),
            "/models",
            lambda: provider.promote(name),
            done=lambda entry: f"Promoted {name} ({entry.get('kind')}).",
            refused="Not promoted",
        )

    # --- results -------------------------------------------------------------------

    async def instance(self, request: Request) -> Response:
        """The result page of one radiograph."""
        await self._user(request)
        instance_id = _int_param(request, "instance_id")
        details = await run_in_threadpool(
            result_admin.instance_results, self.context.database, instance_id
        )
        if details is None:
            raise HTTPException(404, f"no instance {instance_id}")
        view = await run_in_threadpool(pictures.result_view, details)
        return self._page(request, "instance.html", instance=details, view=view)

    async def overlay_png(self, request: Request) -> Response:
        """The radiograph with bone outlines and overlap contours."""
        await self._user(request)
        instance_id = _int_param(request, "instance_id")
        details = await run_in_threadpool(
            result_admin.instance_results, self.context.database, instance_id
        )
        if details is None:
            raise HTTPException(404, f"no instance {instance_id}")
        data = await run_in_threadpool(pictures.overlay_picture, details)
        return Response(data, media_type="image/png")

    async def region_png(self, request: Request) -> Response:
        """One joint's region of the source radiograph."""
        await self._user(request)
        instance_id = _int_param(request, "instance_id")
        details = await run_in_threadpool(
            result_admin.instance_results, self.context.database, instance_id
        )
        if details is None:
            raise HTTPException(404, f"no instance {instance_id}")
        data = await run_in_threadpool(
            pictures.region_picture, details, request.path_params["joint"]
        )
        if data is None:
            raise HTTPException(404, "no such joint in this result")
        return Response(data, media_type="image/png")

    async def output(self, request: Request) -> Response:
        """An output's page is its radiograph's result page."""
        await self._user(request)
        found = await self._output(request)
        return RedirectResponse(f"/instances/{found['instance_id']}", status_code=303)

    async def output_png(self, request: Request) -> Response:
        """A Secondary Capture output as PNG."""
        await self._user(request)
        found = await self._output(request)
        if found["kind"] != "sc":
            raise HTTPException(404, "only Secondary Capture outputs are shown as pictures")
        data = await run_in_threadpool(pictures.output_picture, Path(found["path"]))
        return Response(data, media_type="image/png")

    async def _output(self, request: Request) -> dict[str, Any]:
        output_id = _int_param(request, "output_id")
        found = await run_in_threadpool(result_admin.output_file, self.context.database, output_id)
        if found is None:
            raise HTTPException(404, f"no output {output_id}")
        return found

    # --- errors --------------------------------------------------------------------

    async def login_required(self, request: Request, _error: Exception) -> Response:
        """Pages send the browser to the login form; form posts are refused outright."""
        if request.method != "GET":
            return HTMLResponse("login required", status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    async def http_error(self, request: Request, error: Exception) -> Response:
        """An error page naming the problem."""
        assert isinstance(error, HTTPException)
        return self._page(
            request, "error.html", error.status_code, code=error.status_code, detail=error.detail
        )

    def routes(self) -> list[Route]:
        """Every route of the dashboard."""
        return [
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.status, methods=["GET"]),
            Route("/jobs", self.jobs, methods=["GET"]),
            Route("/jobs/{job_id:int}", self.job, methods=["GET"]),
            Route("/jobs/{job_id:int}/retry", self.retry_job, methods=["POST"]),
            Route("/dispatches", self.dispatches, methods=["GET"]),
            Route("/dispatches/{dispatch_id:int}/retry", self.retry_dispatch, methods=["POST"]),
            Route("/destinations", self.destinations, methods=["GET"]),
            Route("/destinations", self.add_destination, methods=["POST"]),
            Route("/destinations/{name}/remove", self.remove_destination, methods=["POST"]),
            Route("/destinations/{name}/echo", self.echo_destination, methods=["POST"]),
            Route("/rules", self.rules, methods=["GET"]),
            Route("/rules/test", self.test_rules, methods=["POST"]),
            Route("/models", self.models, methods=["GET"]),
            Route("/models/{name}/promote", self.promote, methods=["POST"]),
            Route("/instances/{instance_id:int}", self.instance, methods=["GET"]),
            Route("/instances/{instance_id:int}/overlay.png", self.overlay_png, methods=["GET"]),
            Route(
                "/instances/{instance_id:int}/joints/{joint}.png", self.region_png, methods=["GET"]
            ),
            Route("/outputs/{output_id:int}", self.output, methods=["GET"]),
            Route("/outputs/{output_id:int}.png", self.output_png, methods=["GET"]),
        ]


def create_app(context: WebContext) -> Starlette:
    """The dashboard as an ASGI application."""
    dashboard = Dashboard(context)
    app = Starlette(
        routes=dashboard.routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            LoginRequiredError: dashboard.login_required,
            HTTPException: dashboard.http_error,
        },
    )
    app.state.dashboard = dashboard
    return app


def _int_param(request: Request, name: str) -> int:
    value = request.path_params[name]
    return int(value)


def _enum_or_none(enum_class: Any, value: str | None) -> Any:
    if not value:
        return None
    try:
        return enum_class(value)
    except ValueError as error:
        raise HTTPException(400, f"unknown state {value!r}") from error


def _destination_fields(form: FormData) -> dict[str, Any]:
    """The form's destination fields, empty ones left out (so each protocol's defaults hold)."""
    names = ("name", "ae_title", "host", "port", "send", "transfer_syntax")
    fields: dict[str, Any] = {}
    for name in names:
        value = str(form.get(name) or "").strip()
        if value:
            fields[name] = value
    kinds = [str(kind) for kind in form.getlist("results")]
    if kinds:  # none ticked: every kind
        fields["results"] = kinds
    return fields


def _safe_next(request: Request, submitted: object = None) -> str:
    """Where to go after login: a local path only (never another site)."""
    target = submitted if isinstance(submitted, str) else request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
