"""Load: four modalities send a few hundred instances at once to a running ``blsnode serve``.

Each dcmtk ``storescu`` also resends a few of its neighbour's instances, so the same SOP
Instance UID arrives on two associations at nearly the same time. Everything must be
stored exactly once and accounted for: status counts, spool files, database rows, jobs
and the C-STORE metrics.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from e2e_node import served_node
from loopback import system_program, wait_until
from node_testing import hand_dataset, save

pytestmark = pytest.mark.e2e

SENDERS = 4
PER_SENDER = 75
RESENT = 5  # instances of the next sender each sender sends again
EVERY_NTH_IS_A_CHEST = 10  # stored, but no rule processes a chest


def _instances(folder: Path) -> tuple[list[Path], list[str], int]:
    """Small DX files (hands, and every tenth a chest); their UIDs; how many are hands."""
    files, uids, hands = [], [], 0
    for number in range(SENDERS * PER_SENDER):
        chest = number % EVERY_NTH_IS_A_CHEST == 0
        dataset = hand_dataset(
            rows=32, columns=32, seed=number, BodyPartExamined="CHEST" if chest else "HAND"
        )
        files.append(save(dataset, folder / f"{number:04d}.dcm"))
        uids.append(str(dataset.SOPInstanceUID))
        hands += not chest
    return files, uids, hands


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"metric {name} not exposed")


def test_concurrent_senders_store_every_instance_exactly_once(tmp_path: Path) -> None:
    files, uids, hands = _instances(tmp_path / "modality")
    with served_node(tmp_path / "node") as node:
        senders = []
        for index in range(SENDERS):
            own = files[index * PER_SENDER : (index + 1) * PER_SENDER]
            start = ((index + 1) % SENDERS) * PER_SENDER
            command = [
                system_program("storescu"), "-aet", f"MODALITY{index}", "-aec", node.ae_title,
                "127.0.0.1", str(node.port), *map(str, own + files[start : start + RESENT]),
            ]  # fmt: skip
            senders.append(subprocess.Popen(command, stderr=subprocess.PIPE))
        for sender in senders:
            _, errors = sender.communicate(timeout=180)
            assert sender.returncode == 0, errors.decode(errors="replace")

        status = node.status()
        assert status["instances"] == len(uids)
        assert status["series"] == len(uids)  # hand_dataset: a new series per instance
        assert status["jobs"] == {"queued": hands, "running": 0, "done": 0, "failed": 0}
        booked = node.instance_uids()
        assert set(booked) == set(uids)
        assert max(booked.values()) == 1
        spooled = node.spooled_files()
        assert sorted(path.stem for path in spooled) == sorted(uids)
        assert len({job.instance_id for job in node.jobs()}) == hands

        port = node.settings.http.port
        assert _metric(port, 'blsnode_cstore_total{outcome="stored"}') == len(uids)
        assert _metric(port, 'blsnode_cstore_total{outcome="duplicate"}') == SENDERS * RESENT
        # An association's thread ends shortly after its release.
        wait_until(
            lambda: _metric(port, "blsnode_associations_active") == 0,
            timeout_s=10,
            what="no association left open",
        )
        assert node.stop() == 0
