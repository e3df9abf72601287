"""CPU that idle connections cost ``blsnode serve``: N silent peers against none.

Starts the node with no worker, then measures the CPU time (user + system, all threads)
of the serve process over ``--seconds`` twice in alternation: with no connection, and
with ``--connections`` peers that stay silent. ``--mode silent`` opens TCP connections
that never send anything (a port scan, a half-dead load balancer); ``--mode associated``
completes an association with pynetdicom and then sends nothing. The node is configured
so that nothing closes the peers during the measurement (ACSE and network timeouts and
the never-associating deadline above the measured span): the figure is what each idle
peer costs while it is open, not how soon the node gets rid of it.

Prints the cores used (CPU seconds / wall seconds) with and without the peers and their
ratio. Time on a loaded machine is only meaningful side by side: run the previous code
the same way in the same minutes (see docs/operations-node.md for the commands used).

    .venv/bin/python benchmarks/bench_idle_sockets.py [--connections 100] [--seconds 10]
        [--repeats 3] [--mode silent|associated] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicom_node.settings import NetworkSettings

# Free ports, waiting for listeners: the tests' helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from installed import blsnode_command
from loopback import LOOPBACK, free_port, stop_process, wait_for_port

# Long enough that no timeout of the node closes a peer while it is measured.
_HOLD_S = 600


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cores_used(pid: int, seconds: float) -> float:
    """CPU seconds per wall second that ``pid`` spends over the next ``seconds``."""
    cpu, wall = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)


def start_node(scratch: Path, port: int) -> subprocess.Popen:
    """``blsnode serve`` on loopback whose timeouts outlast the measurement."""
    config = scratch / "node.toml"
    # Earlier versions (a checkout of an older commit, for a side-by-side ratio) have
    # no request deadline and refuse unknown keys.
    deadline = (
        f"association_request_timeout_s = {_HOLD_S}\n"
        if "association_request_timeout_s" in NetworkSettings.model_fields
        else ""
    )
    config.write_text(
        f'[network]\nhost = "127.0.0.1"\nport = {port}\nae_title = "BLSNODE"\n'
        f"acse_timeout_s = {_HOLD_S}\nnetwork_timeout_s = {_HOLD_S}\n{deadline}"
        "max_associations = 1000\nmax_associations_per_host = 1000\n"
        f"[http]\nport = {free_port()}\n[worker]\nembedded = false\n"
        '[logging]\nlevel = "WARNING"\n'
    )
    command = blsnode_command("--config", config, "--data-dir", scratch / "data", "serve")
    return subprocess.Popen(command, cwd=scratch)


@contextlib.contextmanager
def silent_peers(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` TCP connections that send nothing."""
    peers = [socket.create_connection((LOOPBACK, port)) for _ in range(count)]
    try:
        yield peers
    finally:
        for peer in peers:
            peer.close()


@contextlib.contextmanager
def associated_peers(port: int, count: int) -> Iterator[list[Association]]:
    """``count`` associations that send nothing after A-ASSOCIATE-AC."""
    ae = AE(ae_title="IDLE")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = _HOLD_S
    peers = [ae.associate(LOOPBACK, port, ae_title="BLSNODE") for _ in range(count)]
    try:
        if not all(peer.is_established for peer in peers):
            raise RuntimeError("the node refused some of the idle associations")
        yield peers
    finally:
        for peer in peers:
            peer.abort()


def still_open(peers: list[socket.socket]) -> int:
    """How many silent peers the node has not closed."""
    open_count = 0
    for peer in peers:
        peer.setblocking(False)
        try:
            open_count += peer.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            open_count += 1
        except OSError:
            pass
        finally:
            peer.setblocking(True)
    return open_count


def measure(mode: str, connections: int, seconds: float, repeats: int) -> dict[str, float]:
    """Median cores used by serve without and with the idle peers, alternating."""
    without: list[float] = []
    with_peers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        port = free_port()
        process = start_node(Path(tmp), port)
        try:
            wait_for_port(port, 60.0, process)
            time.sleep(2.0)  # let start-up work (migrations, reconciliation) finish
            for _ in range(repeats):
                without.append(cores_used(process.pid, seconds))
                opener = silent_peers if mode == "silent" else associated_peers
                with opener(port, connections) as peers:
                    time.sleep(1.0)  # the node's threads for the peers have started
                    with_peers.append(cores_used(process.pid, seconds))
                    if mode == "silent" and still_open(peers) != connections:  # type: ignore[arg-type]
                        raise RuntimeError("the node closed silent peers during the measurement")
                time.sleep(1.0)  # their threads have ended
        finally:
            stop_process(process, 30)
    idle, loaded = statistics.median(without), statistics.median(with_peers)
    return {
        "cores_without": idle,
        "cores_with": loaded,
        "cores_per_100_peers": (loaded - idle) * 100 / connections,
        "ratio": loaded / idle if idle > 0 else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", choices=("silent", "associated"), default="silent")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.repeats < 1 or args.seconds <= 0:
        parser.error("connections, repeats and seconds must be positive")
    result = measure(args.mode, args.connections, args.seconds, args.repeats)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"mode": args.mode, "connections": args.connections,
                          "seconds": args.seconds, "repeats": args.repeats,
                          "load_average": load, **result}))  # fmt: skip
    else:
        print(
            f"{args.connections} {args.mode} peers, median of {args.repeats} x {args.seconds:g} s"
            f", load average {load:.2f}"
        )
        print(f"serve without peers: {result['cores_without']:.3f} cores")
        print(f"serve with peers:    {result['cores_with']:.3f} cores")
        print(f"cost per 100 peers:  {result['cores_per_100_peers']:.3f} cores")
        print(f"ratio with/without:  {result['ratio']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
