"""The dashboard inside ``blsnode serve``'s node: on once a user exists, its URL logged,
plain HTTP on loopback by default, HTTPS with a Secure cookie when given a certificate."""

from __future__ import annotations

import http.cookiejar
import json
import logging
import ssl
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_testing import node_settings
from pydantic import ValidationError
from web_testing import ADMIN, csrf_of, password_hash

from blsnode.node import Node
from dicom_node.db import Role, open_node_database
from dicom_node.db import users as user_rows
from dicom_node.settings import Settings, load_settings


def _with_admin(settings: Settings) -> None:
    database = open_node_database(settings)
    try:
        with database.sessions.begin() as session:
            user_rows.add_user(session, ADMIN[0], Role.ADMIN, password_hash(ADMIN[2]))
    finally:
        database.dispose()


@pytest.fixture
def running() -> Iterator[list[Node]]:
    """Nodes started by a test, stopped at its end."""
    nodes: list[Node] = []
    yield nodes
    for node in nodes:
        node.stop()


def _start(settings: Settings, nodes: list[Node]) -> Node:
    node = Node(settings)
    nodes.append(node)
    node.start()
    return node


def test_without_users_the_dashboard_stays_off(tmp_path: Path, running, caplog) -> None:
    caplog.set_level(logging.INFO, logger="blsnode.node")
    node = _start(node_settings(tmp_path / "data", web={"port": 0}), running)
    assert node.web is None
    assert "web dashboard off: no user exists yet" in caplog.text


def test_with_a_user_serve_runs_the_dashboard_and_logs_its_url(
    tmp_path: Path, running, caplog
) -> None:
    settings = node_settings(tmp_path / "data", web={"port": 0})
    _with_admin(settings)
    caplog.set_level(logging.INFO, logger="blsnode.node")
    node = _start(settings, running)
    assert node.web is not None
    url = node.web.url
    assert url.startswith("http://127.0.0.1:") and url != "http://127.0.0.1:0/"
    assert f"web dashboard at {url}" in caplog.text
    with urllib.request.urlopen(f"{url}login", timeout=10) as response:
        assert response.status == 200
        assert 'name="csrf"' in response.read().decode()
    # The status page reads the node's own status (through the login redirect first).
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            urllib.request.Request(f"{url}jobs/1/retry", method="POST"), timeout=10
        )
    assert refused.value.code == 401
    node.stop()
    running.clear()
    assert node.web is None


def test_a_login_outlives_a_restart_of_serve_until_logout(tmp_path: Path, running) -> None:
    settings = node_settings(tmp_path / "data", web={"port": 0})
    _with_admin(settings)
    # One browser: its cookie jar keeps the session cookie across the node's restarts
    # (cookies are per host, whatever the port).
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )

    def get(url: str) -> tuple[str, str]:
        with browser.open(url, timeout=10) as response:
            return response.geturl(), response.read().decode()

    def post(url: str, fields: dict[str, str]) -> None:
        data = urllib.parse.urlencode(fields).encode()
        with browser.open(urllib.request.Request(url, data=data), timeout=10):
            pass

    node = _start(settings, running)
    assert node.web is not None
    _, login = get(f"{node.web.url}login")
    post(
        f"{node.web.url}login",
        {"csrf": csrf_of(login), "name": ADMIN[0], "password": ADMIN[2]},
    )
    where, page = get(node.web.url)
    assert "/login" not in where and 'action="/logout"' in page
    node.stop()

    node = _start(settings, running)  # a restart: the same cookie still works
    assert node.web is not None
    where, page = get(node.web.url)
    assert "/login" not in where and 'action="/logout"' in page
    post(f"{node.web.url}logout", {"csrf": csrf_of(page)})
    node.stop()

    node = _start(settings, running)  # logged out before the restart: still logged out
    assert node.web is not None
    where, _ = get(node.web.url)
    assert "/login" in where


def test_the_dashboard_can_be_turned_off_with_users(tmp_path: Path, running) -> None:
    settings = node_settings(tmp_path / "data", web={"port": 0, "enabled": False})
    _with_admin(settings)
    assert _start(settings, running).web is None


def test_under_tls_the_dashboard_speaks_https_with_a_secure_cookie(tmp_path: Path, running) -> None:
    certificate, key = tmp_path / "web.pem", tmp_path / "web.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = node_settings(
        tmp_path / "data", web={"port": 0, "certificate": certificate, "private_key": key}
    )
    _with_admin(settings)
    node = _start(settings, running)
    assert node.web is not None and node.web.url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(certificate))
    with urllib.request.urlopen(f"{node.web.url}login", timeout=10, context=context) as response:
        cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # Plain HTTP gets no page: the server only speaks TLS.
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(node.web.url.replace("https", "http") + "login", timeout=10)


def test_web_settings_refuse_half_a_tls_pair(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="both certificate and private_key"):
        load_settings(data_dir=tmp_path, web={"certificate": tmp_path / "web.pem"})
    assert load_settings(data_dir=tmp_path).web.host == "127.0.0.1"


def test_health_and_metrics_stay_on_their_own_port(tmp_path: Path, running) -> None:
    settings = node_settings(tmp_path / "data", web={"port": 0})
    _with_admin(settings)
    node = _start(settings, running)
    assert node.web is not None and node.web.port != settings.http.port
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.http.port}/health", timeout=10) as r:
        assert json.loads(r.read())["checks"]["listener"] == "ok"
