"""``blsnode serve`` and ``blsnode status`` as separate processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from installed import blsnode_command
from loopback import free_port, system_program, wait_for_port, wait_until
from node_testing import hand_dataset, node_settings, save

if TYPE_CHECKING:
    from blsnode.node import Node


def _http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def served(tmp_path: Path):
    """``blsnode serve`` in a subprocess with its own config file; yields (process, ports, log)."""
    port, http_port = free_port(), free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'[network]\nhost = "127.0.0.1"\n[http]\nport = {http_port}\n'
        "[storage]\nmin_free_bytes = 0\n[logging]\nto_file = true\n[worker]\nembedded = false\n"
    )
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            blsnode_command("--config", str(config), "--data-dir", str(tmp_path / "data"), "serve",
                     "--port", str(port), "--ae-title", "TESTNODE"),
            stderr=stderr,
        )  # fmt: skip
    try:
        wait_for_port(port, process=process)
        wait_for_port(http_port, process=process)
        yield process, port, http_port, log, tmp_path / "data"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_serve_stores_reports_and_shuts_down_cleanly(served, tmp_path: Path) -> None:
    process, port, http_port, log, data_dir = served
    echo = subprocess.run(
        [system_program("echoscu"), "-aec", "TESTNODE", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=30,
    )
    assert echo.returncode == 0, echo.stderr
    files = [save(hand_dataset(seed=n), tmp_path / f"in/{n}.dcm") for n in range(3)]
    sent = subprocess.run(
        [system_program("storescu"), "-aec", "TESTNODE", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr

    code, body = _http(http_port, "/health")
    assert code == 200
    assert json.loads(body)["checks"]["listener"] == "ok"
    code, metrics = _http(http_port, "/metrics")
    assert code == 200
    assert 'blsnode_cstore_total{outcome="stored"} 3.0' in metrics
    assert "blsnode_instances 3.0" in metrics
    assert 'blsnode_jobs{state="queued"} 3.0' in metrics
    assert _http(http_port, "/nothing")[0] == 404

    # The listener process never loads torch (its shared library would be mapped).
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    assert "libtorch" not in maps and "/torch/" not in maps

    status = subprocess.run(
        blsnode_command("--data-dir", str(data_dir), "status", "--json"),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    assert report["instances"] == 3
    assert report["jobs"]["queued"] == 3
    assert report["dispatches"] == {"pending": 0, "sending": 0, "sent": 0, "dead": 0}
    assert report["disk_free_bytes"] > 0
    assert report["queues"]["process"] == 3

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    text = log.read_text()
    assert "any calling AE title may store" in text
    assert "node stopped" in text
    assert "Traceback" not in text
    assert (data_dir / "logs" / "blsnode.log").is_file()


def test_serve_stops_on_sigint(served) -> None:
    process = served[0]
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_status_runs_without_torch_and_reports_every_key(tmp_path: Path) -> None:
    code = (
        "import sys; from blsnode.cli.main import cli;"
        f"cli(['--data-dir', {str(tmp_path)!r}, 'status', '--json'], standalone_mode=False);"
        "sys.stderr.write('TORCH=' + str('torch' in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert {"instances", "jobs", "dispatches", "disk_free_bytes", "queues"} <= set(report)
    assert report["instances"] == 0
    assert set(report["jobs"]) == {"queued", "running", "done", "failed"}
    assert report["queues"] == {"process": 0, "dispatch": 0}
    assert done.stderr.strip().endswith("TORCH=False")


def test_status_names_an_unreachable_broker(tmp_path: Path) -> None:
    env = {**os.environ, "BLSNODE_BROKER__URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run(
        blsnode_command("--data-dir", str(tmp_path), "status"),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "queues      unknown" in done.stdout
    assert "instances   0" in done.stdout


def test_health_fails_when_the_disk_guard_refuses(start_node) -> None:
    node = start_node(storage={"min_free_bytes": 1 << 60})
    code, body = _http(node.http_port, "/health")
    assert code == 503
    assert json.loads(body) == {
        "status": "failing",
        "checks": {
            "listener": "ok",
            "database": "ok",
            "disk": "below_guard",
            "broker": "ok",
            "storing": "ok",  # nothing was refused yet: the guard alone says failing
        },
    }
    wait_until(lambda: node.node.publisher.sweeps >= 1, what="a sweep")


def test_worker_command_carries_the_global_options(tmp_path: Path) -> None:
    from blsnode.node import worker_command

    assert worker_command(tmp_path / "c.toml", tmp_path / "d") == [
        sys.executable, "-m", "blsnode",
        "--config", str(tmp_path / "c.toml"), "--data-dir", str(tmp_path / "d"), "worker",
    ]  # fmt: skip
    assert worker_command(None, None)[-1] == "worker"


def _node_with_an_idle_worker(tmp_path: Path) -> Node:
    """A started node whose embedded "worker" is a process that only sleeps."""
    from blsnode.node import Node

    settings = node_settings(tmp_path / "data", worker={"embedded": True})
    node = Node(settings, [sys.executable, "-c", "import time; time.sleep(120)"])
    node.start()
    return node


def test_embedded_worker_is_started_and_stopped_with_the_node(tmp_path: Path) -> None:
    embedded = _node_with_an_idle_worker(tmp_path)
    try:
        worker = embedded.worker
        assert worker is not None and worker.poll() is None
        _, report = embedded.health()
        assert report["checks"]["worker"] == "ok"
    finally:
        embedded.stop()
    assert worker.returncode == -signal.SIGTERM


def test_an_embedded_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    embedded = _node_with_an_idle_worker(tmp_path)
    try:
        first = embedded.worker
        assert first is not None
        assert first.args[-2:] == ["--parent-pid", str(os.getpid())]
        first.send_signal(signal.SIGKILL)  # the OOM killer
        first.wait(10)
        wait_until(lambda: embedded.health()[1]["checks"]["worker"] == "restarting", 5)
        second = wait_until(
            lambda: embedded.worker is not first and embedded.worker, 15, what="a new worker"
        )
        assert second.poll() is None
        assert embedded.health()[1]["checks"]["worker"] == "ok"
        assert embedded.metrics.worker_restarts._value.get() == 1
    finally:
        embedded.stop()
    assert second.returncode == -signal.SIGTERM


def test_embedded_worker_arguments_are_checked() -> None:
    from blsnode.embedded_worker import EmbeddedWorker

    with pytest.raises(ValueError, match="command line"):
        EmbeddedWorker([])
    with pytest.raises(ValueError, match="restart delays"):
        EmbeddedWorker(["true"], restart_delay_s=2, max_restart_delay_s=1)


def test_without_an_installed_worker_the_node_says_so(tmp_path: Path, caplog) -> None:
    from blsnode.node import Node

    node = Node(node_settings(tmp_path / "data", worker={"embedded": True}), None)
    node.start()
    try:
        assert node.worker is None
    finally:
        node.stop()
    assert "embedded worker not available" in caplog.text


def test_status_names_an_unreachable_database(tmp_path: Path) -> None:
    env = {**os.environ, "BLSNODE_DATABASE__URL": f"postgresql://nobody@127.0.0.1:{free_port()}/x"}
    done = subprocess.run(
        blsnode_command("--data-dir", str(tmp_path), "status", "--json"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert "cannot open the database" in done.stderr
    assert "Traceback" not in done.stderr
