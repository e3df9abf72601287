"""Every route of the dashboard: authentication, authorisation (viewer vs admin) and CSRF."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from web_testing import ADMIN, DESTINATION, VIEWER, WebNode, csrf_of, log_in

from dicom_node.admin import destinations as destination_admin
from dicom_node.admin.users import Identity
from dicom_node.db import DispatchState, JobState, Role
from dicom_node.db import dispatches as dispatch_rows
from dicom_node.db.models import WebLogin
from dicom_node.settings import DestinationSettings
from dicom_node.web.security import COOKIE_NAME, SessionStore

# Pages; {job}, {instance}, {output} are filled from the processed node.
PAGES = (
    "/",
    "/jobs",
    "/jobs?state=failed",
    "/jobs/{job}",
    "/dispatches",
    "/dispatches?state=dead",
    "/destinations",
    "/rules",
    "/models",
    "/instances/{instance}",
    "/instances/{instance}/overlay.png",
    "/instances/{instance}/joints/MCP2%20L.png",
    "/outputs/{output}",
    "/outputs/{output}.png",
)
# Form posts that change the node (admin only); {failed}, {dead} from the web node.
ADMIN_POSTS = (
    ("/jobs/{failed}/retry", {}),
    ("/dispatches/{dead}/retry", {}),
    (
        "/destinations",
        {"name": "viewer2", "ae_title": "VIEWER2", "host": "127.0.0.1", "port": "11119"},
    ),
    (f"/destinations/{DESTINATION}/remove", {}),
    (f"/destinations/{DESTINATION}/echo", {}),
    ("/models/blsgan-cpu/promote", {}),
)
# Form posts every logged-in user may make.
USER_POSTS = (("/rules/test", {"instance_id": "{instance}"}), ("/logout", {}))


def _pages(node: WebNode) -> list[str]:
    output_id = _sc_output(node)
    return [
        page.format(
            job=node.processed_job_id, instance=node.processed_instance_id, output=output_id
        )
        for page in PAGES
    ]


def _sc_output(node: WebNode) -> int:
    from dicom_node.admin.instance_results import instance_results

    assert node.processed_instance_id is not None
    details = instance_results(node.database, node.processed_instance_id)
    assert details is not None
    return next(o["id"] for o in details["outputs"] if o["kind"] == "sc")


def _fill(node: WebNode, path: str, form: dict[str, str]) -> tuple[str, dict[str, str]]:
    values = {"failed": node.failed_job_id, "dead": node.dead_dispatch_id}
    values["instance"] = node.instance_id
    return path.format(**values), {k: v.format(**values) for k, v in form.items()}


def _add_destination(node: WebNode) -> None:
    destination_admin.add(
        node.settings,
        node.database,
        DestinationSettings(name=DESTINATION, ae_title="PACS", host="127.0.0.1", port=1),
    )


def _unchanged(node: WebNode) -> None:
    """None of the admin posts took effect."""
    assert node.job_state(node.failed_job_id) is JobState.FAILED
    with node.database.reader() as session:
        dispatch = dispatch_rows.get_dispatch(session, node.dead_dispatch_id)
        assert dispatch is not None and dispatch.state is DispatchState.DEAD
    names = {
        d["name"] for d in destination_admin.listing(node.settings, node.database)["destinations"]
    }
    assert names == {DESTINATION}
    assert not (node.settings.model_registry_dir / "promoted.json").exists()


def test_every_page_sends_an_anonymous_visitor_to_the_login(processed_node: WebNode) -> None:
    client = processed_node.client()
    for page in _pages(processed_node):
        response = client.get(page)
        assert response.status_code == 303, page
        assert response.headers["location"].startswith("/login?next=%2F"), page


def test_every_page_answers_a_viewer(processed_node: WebNode) -> None:
    client = processed_node.client()
    log_in(client, *VIEWER[::2])
    for page in _pages(processed_node):
        response = client.get(page)
        if page.startswith("/outputs/") and not page.endswith(".png"):
            assert response.status_code == 303, page  # to its radiograph, checked below
            continue
        assert response.status_code == 200, (page, response.text[:300])
        kind = "image/png" if page.endswith(".png") else "text/html"
        assert response.headers["content-type"].startswith(kind), page


def test_an_output_leads_to_its_radiograph(processed_node: WebNode) -> None:
    client = processed_node.client()
    log_in(client, *ADMIN[::2])
    response = client.get(f"/outputs/{_sc_output(processed_node)}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/instances/{processed_node.processed_instance_id}"


def test_every_form_post_without_a_session_is_refused(web_node: WebNode) -> None:
    _add_destination(web_node)
    client = web_node.client()
    token = csrf_of(client.get("/login").text)  # an anonymous session's token does not do
    for path, form in ADMIN_POSTS + USER_POSTS:
        url, data = _fill(web_node, path, form)
        response = client.post(url, data={**data, "csrf": token})
        assert response.status_code == 401, url
    _unchanged(web_node)


def test_a_viewer_cannot_change_anything(web_node: WebNode, caplog) -> None:
    _add_destination(web_node)
    client = web_node.client()
    token = log_in(client, *VIEWER[::2])
    caplog.set_level(logging.INFO, logger="dicom_node.web.audit")
    for path, form in ADMIN_POSTS:
        url, data = _fill(web_node, path, form)
        response = client.post(url, data={**data, "csrf": token})
        assert response.status_code == 403, url
        assert "admin role" in response.text
    _unchanged(web_node)
    refused = [r.getMessage() for r in caplog.records if "refused: not admin" in r.getMessage()]
    assert len(refused) == len(ADMIN_POSTS)
    assert all("user=victor" in line for line in refused)
    # Viewers see no admin buttons either.
    assert "/retry" not in client.get("/jobs").text


def test_a_viewer_may_test_the_rules(web_node: WebNode) -> None:
    client = web_node.client()
    token = log_in(client, *VIEWER[::2])
    response = client.post(
        "/rules/test", data={"csrf": token, "instance_id": str(web_node.instance_id)}
    )
    assert response.status_code == 200
    assert "Decision: rule <strong>hand-pa</strong>, processed" in response.text


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_every_form_post_needs_the_sessions_csrf_token(web_node: WebNode, token) -> None:
    _add_destination(web_node)
    client = web_node.client()
    log_in(client, *ADMIN[::2])
    for path, form in ADMIN_POSTS + USER_POSTS:
        url, data = _fill(web_node, path, form)
        if token is not None:
            data["csrf"] = token
        response = client.post(url, data=data)
        assert response.status_code == 403, url
        assert "CSRF" in response.text
    _unchanged(web_node)
    assert client.get("/").status_code == 200  # the logout post was refused too


def test_another_sessions_csrf_token_does_not_do(web_node: WebNode) -> None:
    first, second = web_node.client(), web_node.client()
    log_in(first, *ADMIN[::2])
    other_token = log_in(second, *ADMIN[::2])
    response = first.post(f"/jobs/{web_node.failed_job_id}/retry", data={"csrf": other_token})
    assert response.status_code == 403
    assert web_node.job_state(web_node.failed_job_id) is JobState.FAILED


def test_login_needs_the_forms_csrf_token(web_node: WebNode) -> None:
    client = web_node.client()
    client.get("/login")
    name, _, password = ADMIN
    response = client.post("/login", data={"name": name, "password": password})
    assert response.status_code == 403
    assert client.get("/").status_code == 303


def test_login_sets_a_fresh_httponly_samesite_cookie_and_logout_ends_it(web_node: WebNode) -> None:
    client = web_node.client()
    page = client.get("/login")
    anonymous = client.cookies[COOKIE_NAME]
    name, _, password = ADMIN
    response = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "name": name, "password": password, "next": "/jobs"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS the cookie is Secure
    session = client.cookies[COOKIE_NAME]
    assert session != anonymous  # no session fixation
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    client.cookies.set(COOKIE_NAME, session)
    assert client.get("/").status_code == 303  # the old cookie is worthless now


def test_a_wrong_password_or_unknown_name_is_refused_alike(web_node: WebNode) -> None:
    client = web_node.client()
    for name, password in (("alice", "not-her-password"), ("mallory", "alice-password-1")):
        page = client.get("/login")
        response = client.post(
            "/login", data={"csrf": csrf_of(page.text), "name": name, "password": password}
        )
        assert response.status_code == 401
        assert "Wrong name or password." in response.text
    assert client.get("/").status_code == 303


def test_logins_are_throttled_after_repeated_failures(web_node: WebNode) -> None:
    client = web_node.client()
    name, _, password = ADMIN
    token = csrf_of(client.get("/login").text)
    for _ in range(web_node.settings.web.login_attempts):
        response = client.post("/login", data={"csrf": token, "name": name, "password": "wrong"})
        assert response.status_code == 401
    # Now even the right password is refused for a while.
    response = client.post("/login", data={"csrf": token, "name": name, "password": password})
    assert response.status_code == 429
    assert "Too many failed logins" in response.text
    assert client.get("/").status_code == 303


def test_login_goes_only_to_local_pages(web_node: WebNode) -> None:
    client = web_node.client()
    name, _, password = ADMIN
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login", data={"csrf": token, "name": name, "password": password, "next": target}
        )
        assert response.headers["location"] == "/", target
        client.post("/logout", data={"csrf": csrf_of(client.get("/").text)})


def test_pages_forbid_scripts_and_framing(web_node: WebNode) -> None:
    response = web_node.client().get("/login")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" not in response.text


def test_removing_a_user_or_changing_the_password_ends_their_sessions(web_node: WebNode) -> None:
    from dicom_node.admin import users as user_admin

    viewer, admin = web_node.client(), web_node.client()
    log_in(viewer, *VIEWER[::2])
    log_in(admin, *ADMIN[::2])
    user_admin.remove(web_node.database, VIEWER[0])  # as `blsnode users remove` does
    assert viewer.get("/").status_code == 303
    user_admin.change_password(web_node.database, ADMIN[0], "a-new-password-2")
    assert admin.get("/").status_code == 303
    log_in(admin, ADMIN[0], "a-new-password-2")
    assert admin.get("/").status_code == 200


def test_stored_logins_expire_and_keep_only_a_hash_of_the_token(web_node: WebNode) -> None:
    now = [1_000_000.0]
    store = SessionStore(3600.0, clock=lambda: now[0], database=web_node.database)
    session = store.create(Identity(ADMIN[0], Role.ADMIN))
    anonymous = store.create(None)  # the login form's: memory only
    with web_node.database.reader() as db:
        rows = db.scalars(select(WebLogin)).all()
    assert [(r.user_name, r.role) for r in rows] == [(ADMIN[0], Role.ADMIN)]
    assert rows[0].token_hash != session.token and session.token not in rows[0].token_hash
    # A restart: a new store on the same database knows the login, not the anonymous one.
    restarted = SessionStore(3600.0, clock=lambda: now[0], database=web_node.database)
    found = restarted.get(session.token)
    assert found is not None and found.csrf == session.csrf
    assert found.identity == Identity(ADMIN[0], Role.ADMIN)
    assert restarted.get(anonymous.token) is None
    now[0] += 3601.0  # past its lifetime: gone, from a fresh store too
    assert (
        SessionStore(3600.0, clock=lambda: now[0], database=web_node.database).get(session.token)
        is None
    )
    assert restarted.get(session.token) is None
