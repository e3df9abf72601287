"""Dispatch in batches: the due files of one destination share one association.

The destination is a pynetdicom storage SCP in the test process that counts the
associations it accepts and refuses or aborts on chosen instances.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from installed import user_environment
from node_testing import RecordingSCP, hand_dataset, save, store_datasets
from sqlalchemy import select

from dicom_node.db import Dispatch, DispatchState
from dicom_node.db import dispatches as dispatch_rows_module
from dicom_node.db.types import utc_now
from dicom_node.queue.broker import TaskSender
from dicom_node.queue.publisher import publish_ids
from dicom_node.send.dispatch import send_due_batch


@pytest.fixture
def recorder() -> Iterator[RecordingSCP]:
    scp = RecordingSCP()
    try:
        yield scp
    finally:
        scp.stop()


def viewer(scp: RecordingSCP, name: str = "VIEWER") -> dict:
    return {"name": name, "ae_title": scp.ae_title, "host": "127.0.0.1", "port": scp.port,
            "send": "all"}  # fmt: skip


def stored_dispatches(node, count: int) -> tuple[list[str], list[int]]:
    """Store ``count`` hand radiographs; their UIDs and the ids of their dispatches."""
    datasets = [hand_dataset(seed=seed) for seed in range(count)]
    assert store_datasets(node.port, datasets) == [0] * count
    with node.database.sessions() as session:
        ids = list(session.scalars(select(Dispatch.id).order_by(Dispatch.id)))
    assert len(ids) == count
    return [str(ds.SOPInstanceUID) for ds in datasets], ids


def dispatch_rows(node) -> dict[int, Dispatch]:
    with node.database.sessions() as session:
        return {d.id: d for d in session.scalars(select(Dispatch))}


def test_due_files_share_one_association_and_fail_alone(start_node, recorder) -> None:
    node = start_node(destinations=[viewer(recorder)], dispatch={"backoff_initial_s": 30})
    uids, ids = stored_dispatches(node, 6)
    recorder.refuse[uids[2]] = 0xA700
    recorder.start()
    batch = send_due_batch(node.settings, node.database, ids[0])
    assert recorder.associations == 1
    assert set(recorder.received) == set(uids) - {uids[2]}
    assert max(recorder.received.values()) == 1
    assert [o.dispatch_id for o in batch.outcomes] == ids
    rows = dispatch_rows(node)
    # The refused file alone waits for its retry; every row counts its own attempt.
    assert [rows[i].state for i in ids] == [
        DispatchState.SENT, DispatchState.SENT, DispatchState.PENDING,
        DispatchState.SENT, DispatchState.SENT, DispatchState.SENT,
    ]  # fmt: skip
    assert [rows[i].attempts for i in ids] == [1] * 6
    assert rows[ids[2]].last_status == 0xA700 and "0xA700" in rows[ids[2]].last_error
    assert batch.outcome().state is DispatchState.SENT
    # The other messages of the batch find nothing due and open no association.
    later = send_due_batch(node.settings, node.database, ids[3])
    assert later.outcomes == () and later.outcome().attempted is False
    assert recorder.associations == 1


def test_batch_size_caps_an_association_and_any_message_drains(start_node, recorder) -> None:
    node = start_node(destinations=[viewer(recorder)], dispatch={"batch_size": 4})
    uids, ids = stored_dispatches(node, 6)
    recorder.start()
    first = send_due_batch(node.settings, node.database, ids[5])
    assert [o.dispatch_id for o in first.outcomes] == [ids[5], *ids[:3]]
    # The message of an already sent dispatch still takes what is due for its destination.
    second = send_due_batch(node.settings, node.database, ids[5])
    assert [o.dispatch_id for o in second.outcomes] == ids[3:5]
    assert recorder.associations == 2
    assert sorted(recorder.received) == sorted(uids)
    assert {row.state for row in dispatch_rows(node).values()} == {DispatchState.SENT}


def test_an_association_aborted_mid_batch_is_opened_again(start_node, recorder) -> None:
    node = start_node(destinations=[viewer(recorder)], dispatch={"backoff_initial_s": 30})
    uids, ids = stored_dispatches(node, 5)
    recorder.abort_on.add(uids[1])
    recorder.start()
    send_due_batch(node.settings, node.database, ids[0])
    rows = dispatch_rows(node)
    assert [rows[i].state for i in ids] == [
        DispatchState.SENT, DispatchState.PENDING, DispatchState.SENT, DispatchState.SENT,
        DispatchState.SENT,
    ]  # fmt: skip
    assert recorder.associations == 2
    assert set(recorder.received) == set(uids) - {uids[1]}


def test_an_unreachable_destination_fails_the_batch_with_backoff(start_node, recorder) -> None:
    node = start_node(destinations=[viewer(recorder)], dispatch={"backoff_initial_s": 30})
    _, ids = stored_dispatches(node, 3)
    batch = send_due_batch(node.settings, node.database, ids[1])
    assert [o.state for o in batch.outcomes] == [DispatchState.PENDING] * 3
    # Each file's failure is committed as it happens: the retries are due together.
    due = [o.next_attempt_at for o in batch.outcomes if o.next_attempt_at is not None]
    assert len(due) == 3 and max(due) - min(due) < timedelta(seconds=1)
    assert all("VIEWER" in (o.error or "") for o in batch.outcomes)
    assert recorder.associations == 0


def test_one_message_per_destination_and_batch_is_published(start_node, recorder) -> None:
    second = RecordingSCP(ae_title="SECOND")
    node = start_node(
        destinations=[viewer(recorder), viewer(second, "SECOND")], dispatch={"batch_size": 4}
    )
    stored_dispatches_per_destination = 6
    datasets = [hand_dataset(seed=seed) for seed in range(stored_dispatches_per_destination)]
    assert store_datasets(node.port, datasets) == [0] * len(datasets)
    node.node.publisher.stop()  # the node's own publisher would publish them as well
    with node.database.sessions.begin() as session:
        rows = list(session.scalars(select(Dispatch).order_by(Dispatch.id)))
        for row in rows:
            row.published_at = None
    ids = [row.id for row in rows]
    sender = TaskSender(node.settings)
    try:
        before = sender.queue_depths()["dispatch"]
        report = publish_ids(sender, node.database, [], ids)
        # 6 files for each of two destinations in batches of 4: 2 + 2 messages.
        assert sender.queue_depths()["dispatch"] - before == 4
    finally:
        sender.close()
    assert sorted(report.dispatches) == sorted(ids)
    assert all(row.published_at is not None for row in dispatch_rows(node).values())


def test_files_whose_contexts_exceed_one_association_use_several(tmp_path, recorder) -> None:
    from pynetdicom import AllStoragePresentationContexts

    from dicom_node.send.scu import store_files
    from dicom_node.settings import DestinationSettings, load_settings

    # 70 SOP classes, each proposed in Explicit and Implicit VR Little Endian: 140
    # presentation contexts, more than the 128 one association may propose.
    classes = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts[:70]]
    paths = []
    for number, sop_class in enumerate(classes):
        ds = hand_dataset(seed=number, SOPClassUID=sop_class)
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        paths.append(save(ds, tmp_path / f"{number:02d}.dcm"))
    recorder.start()
    settings = load_settings(data_dir=tmp_path / "node")
    target = DestinationSettings(
        name="VIEWER", ae_title=recorder.ae_title, host="127.0.0.1", port=recorder.port
    )
    attempts = store_files(settings, target, paths)
    assert all(attempt.stored for attempt in attempts), attempts
    assert len(recorder.received) == len(paths)
    assert recorder.associations == 2


SENDER = """
import sys
from dicom_node.db import open_node_database
from dicom_node.send.dispatch import send_due_batch
from dicom_node.settings import Settings
settings = Settings.model_validate_json(sys.stdin.read())
send_due_batch(settings, open_node_database(settings, migrate=False), int(sys.argv[1]))
"""


def test_a_sender_killed_mid_batch_sends_again_only_the_file_in_flight(start_node) -> None:
    """Issue 17: what was delivered before the sender died is never sent again."""
    sender: list[subprocess.Popen[str]] = []

    def kill_the_sender_at_the_third_file(uid: str, total: int) -> None:
        if total == 3:  # received, not yet answered: the file in flight
            sender[0].send_signal(signal.SIGKILL)

    scp = RecordingSCP(on_received=kill_the_sender_at_the_third_file).start()
    try:
        node = start_node(destinations=[viewer(scp)])
        uids, ids = stored_dispatches(node, 5)
        sender.append(
            subprocess.Popen(
                [sys.executable, "-c", SENDER, str(ids[0])],
                stdin=subprocess.PIPE,
                text=True,
                env=user_environment(),
            )
        )
        sender[0].communicate(node.settings.model_dump_json(), timeout=120)
        assert sender[0].returncode == -signal.SIGKILL
        states = [row.state for row in dispatch_rows(node).values()]
        assert states.count(DispatchState.SENT) == 2  # each delivery committed at once
        assert states.count(DispatchState.SENDING) == 3  # in flight and untried
        stale = timedelta(seconds=node.settings.dispatch.stale_after_s + 1)
        with node.database.sessions.begin() as session:
            released = dispatch_rows_module.release_stale_sending(
                session, utc_now() + stale, timedelta(seconds=node.settings.dispatch.stale_after_s)
            )
        assert len(released) == 3
        pending = [
            i for i, row in dispatch_rows(node).items() if row.state is DispatchState.PENDING
        ]
        send_due_batch(node.settings, node.database, pending[0], now=utc_now() + stale)
        assert all(row.state is DispatchState.SENT for row in dispatch_rows(node).values())
        assert set(scp.received) == set(uids)
        assert sorted(scp.received.values()) == [1, 1, 1, 1, 2]  # only the one in flight twice
    finally:
        scp.stop()
