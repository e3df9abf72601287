"""Process one hand radiograph with an installed ``blsnode``, as the README tells a user.

Run with the Python of the environment to check (a fresh one with the built wheel in
``make test``): it starts ``blsnode serve`` from a scratch folder outside the repository
on free loopback ports, wraps a hand image of ``../shared/data/hand_radiographs`` as DX
with ``blsnode import-image``, sends it with pynetdicom's ``storescu``, waits for its job
and checks that the SEG, SC and SR outputs were written. Exit status 0 only then.

    python scripts/smoke_job.py [--image PATH] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
DEFAULT_IMAGE = REPO.parent / "shared/data/hand_radiographs/images/3143.jpg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def blsnode(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One ``blsnode`` command of this environment; raises with its output on failure."""
    done = subprocess.run(
        [str(BIN / "blsnode"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"blsnode {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done


def wait_for(
    what: str,
    condition: Callable[[], T | None],
    timeout_s: float,
    node: subprocess.Popen[bytes],
    log: Path,
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail with the node's log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if node.poll() is not None:
            raise SystemExit(f"blsnode serve exited ({node.returncode}):\n{log.read_text()}")
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BLSNODE_")}
    environment.pop("PYTHONPATH", None)
    os.environ.clear()
    os.environ.update(environment)
    with tempfile.TemporaryDirectory(prefix="blsnode-smoke-") as scratch_name:
        scratch = Path(scratch_name)
        port, http_port = free_port(), free_port()
        config = scratch / "node.toml"
        config.write_text(
            f'data_dir = "{scratch / "data"}"\n'
            f'[network]\nhost = "127.0.0.1"\nport = {port}\n[http]\nport = {http_port}\n'
        )
        log = scratch / "serve.log"
        started = time.monotonic()
        with log.open("wb") as stream:
            node = subprocess.Popen(
                [str(BIN / "blsnode"), "--config", str(config), "serve"],
                cwd=scratch,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for("the listener", lambda: _listening(port) or None, 120, node, log)
            hand = scratch / "hand.dcm"
            blsnode("import-image", str(options.image), "--out", str(hand), cwd=scratch)
            sent = subprocess.run(
                [
                    str(BIN / "python"),
                    "-m",
                    "pynetdicom",
                    "storescu",
                    "127.0.0.1",
                    str(port),
                    str(hand),
                    "-aec",
                    "BLSNODE",
                ],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if sent.returncode != 0:
                raise SystemExit(f"storescu failed:\n{sent.stdout}{sent.stderr}")

            def finished() -> dict[str, object] | None:
                listing = blsnode("--config", str(config), "jobs", "list", "--json", cwd=scratch)
                jobs = json.loads(listing.stdout)["jobs"]
                if jobs and jobs[0]["state"] in ("done", "failed", "skipped"):
                    return dict(jobs[0])
                return None

            job = wait_for("the job", finished, options.timeout, node, log)
            if job["state"] != "done":
                raise SystemExit(f"job ended {job['state']}: {job['reason']}\n{log.read_text()}")
            shown = blsnode(
                "--config", str(config), "jobs", "show", str(job["id"]), "--json", cwd=scratch
            )
            outputs = json.loads(shown.stdout)["outputs"]
            kinds = sorted({output["kind"] for output in outputs})
            missing = [o["path"] for o in outputs if not Path(o["path"]).is_file()]
            if not {"seg", "sc", "sr"} <= set(kinds) or missing:
                raise SystemExit(f"outputs incomplete: kinds {kinds}, missing files {missing}")
            seconds = time.monotonic() - started
            print(f"smoke job done: {len(outputs)} outputs ({', '.join(kinds)}) in {seconds:.1f} s")
        finally:
            os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
    return 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    raise SystemExit(main())
