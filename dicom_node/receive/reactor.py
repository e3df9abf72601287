"""pynetdicom's DICOM upper layer (DUL) reactor, waiting for work instead of polling it.

pynetdicom runs one DUL thread per connection that polls its socket and its queues every
millisecond (``time.sleep(0.001)`` between empty rounds). Each idle connection so cost
about a thousand wake-ups a second: 100 silent TCP connections took 1.3 cores of the
listener, and anyone who can reach the port can open them. ``QuietDUL`` runs the same
rounds but, when a round found nothing to do, blocks in ``select`` on the peer's socket
and a wake-up file descriptor that every local request (a PDU to send, a kill) writes
to; the ARTIM timer bounds the wait. An idle connection then costs a wake-up per
``_SAFETY_WAIT_S`` (for anything that changes the connection from another thread
without a wake-up, such as the server closing the socket).

The association's own thread polled the same way (a 1 ms sleep per round, for a
message, a release or an abort from the DUL). ``QuietAcceptor`` waits instead on an
event the DUL sets after every state machine action, bounded by the network idle timer:
an established association with nothing to do sleeps, and a request is served as soon
as it is decoded rather than up to a millisecond later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

logger = logging.getLogger(__name__)

# Longest wait without a look at the connection's state.
_SAFETY_WAIT_S = 0.5
# Linux's TCP_QUICKACK, None elsewhere. A reactor woken by ``select`` reads each PDU as
# its first segment arrives; the kernel then delayed its acknowledgement (up to 40 ms),
# and the sender's next segments waited for it: the node stored small instances from
# dcmtk's storescu at 50/s instead of 220/s. With quick acknowledgements switched on
# after every PDU read (the kernel leaves that mode by itself), the reactor can wake at
# the first byte, without pynetdicom's 1 ms polling between PDUs.
_QUICK_ACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# Where that option is missing, within this long of its last action the reactor looks
# at the socket every ``_BUSY_POLL_S``, as pynetdicom does, rather than waking at its
# first byte (local requests, such as a response to send, still wake it at once).
_BUSY_S = 0.0 if _QUICK_ACK is not None else 0.05
_BUSY_POLL_S = 0.001


class Wakeup:
    """A file descriptor that ``select`` sees readable once ``set`` until ``clear``.

    An eventfd where the platform has one (one descriptor), a pipe elsewhere. ``set``
    after ``close`` does nothing: the lock keeps it from writing to a descriptor number
    the process has meanwhile given to another connection.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        if hasattr(os, "eventfd"):
            self.fileno = self._write_end = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # platforms without eventfd
            self.fileno, self._write_end = os.pipe()
            os.set_blocking(self.fileno, False)
            os.set_blocking(self._write_end, False)

    def set(self) -> None:
        """Make the descriptor readable."""
        with self._lock:
            if self._closed:
                return
            # A full counter (or pipe) is readable already.
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_end, (1).to_bytes(8, "little"))

    def clear(self) -> None:
        """Drain the descriptor (only its reader calls this, before ``close``)."""
        with contextlib.suppress(BlockingIOError):  # nothing to drain
            os.read(self.fileno, 4096)

    def close(self) -> None:
        """Release the descriptor(s); later ``set`` calls do nothing."""
        with self._lock:
            self._closed = True
            os.close(self.fileno)
            if self._write_end != self.fileno:
                os.close(self._write_end)


class QuietDUL(DULServiceProvider):
    """A DUL provider that sleeps until its socket, its user or its ARTIM timer has news."""

    wakeup: Wakeup
    # Set after every state machine action and when the reactor ends: news for the
    # association's thread.
    delivered: threading.Event

    def quieten(self) -> None:
        """Give an instance made as a plain provider what this class needs (before start)."""
        self.wakeup = Wakeup()
        self.delivered = threading.Event()
        self._last_action = 0.0

    def run(self) -> None:
        """The thread's body: pynetdicom bound its own reactor as the thread's target."""
        self.run_reactor()

    def send_pdu(self, primitive: Any) -> None:
        """Queue ``primitive`` for the peer and wake the reactor to send it."""
        super().send_pdu(primitive)
        self.wakeup.set()

    def kill_dul(self) -> None:
        """Stop the reactor, waking it to notice."""
        super().kill_dul()
        self.wakeup.set()

    def stop_dul(self) -> bool:
        """Stop the reactor if the state machine is idle (Sta1); wait until it has."""
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self.wakeup.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
        return True

    def run_reactor(self) -> None:
        """pynetdicom's reactor loop, with its 1 ms sleep replaced by ``_wait``."""
        self._idle_timer.start()
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                if self._kill_thread:
                    break
                # The ARTIM timer first, so its event is queued ahead of others.
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    # Either send one local primitive or read one PDU per round.
                    if self._process_recv_primitive():
                        pass
                    elif self._is_transport_event():
                        self._idle_timer.restart()
                        self._acknowledge_at_once()
                except Exception:
                    self._abort_on_error()
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    self._wait()
                    continue
                self.state_machine.do_action(event)
                self._last_action = time.monotonic()
                self.delivered.set()
        finally:
            self.wakeup.close()
            self.delivered.set()

    def _acknowledge_at_once(self) -> None:
        """Acknowledge the peer's next segments without delay (``_QUICK_ACK``)."""
        raw = None if self.socket is None else self.socket.socket
        if _QUICK_ACK is not None and raw is not None:
            # A connection closed meanwhile: the next round notices it (Evt17).
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, _QUICK_ACK, 1)

    def _abort_on_error(self) -> None:
        """As pynetdicom: an exception in the reactor aborts the association at once."""
        logger.exception("exception in the DUL reactor; aborting the association")
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = 0x00
        if self.socket is not None:
            self.socket.send(abort.encode())
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True

    def _wait(self) -> None:
        """Block until the peer sends, a local request arrives, or the ARTIM timer runs out.

        While busy (an action within ``_BUSY_S``) the socket is looked at every
        ``_BUSY_POLL_S`` instead, as pynetdicom does; local requests still wake at once.
        """
        if self._kill_thread or not self.to_provider_queue.empty():
            return
        watched: list[Any] = [self.wakeup.fileno]
        timeout = _SAFETY_WAIT_S
        if time.monotonic() - self._last_action < _BUSY_S:
            timeout = _BUSY_POLL_S
        else:
            association_socket = self.socket
            raw = None if association_socket is None else association_socket.socket
            if (
                raw is not None
                and association_socket is not None
                and association_socket._is_connected
            ):
                if isinstance(raw, ssl.SSLSocket) and raw.pending():
                    return  # decrypted bytes waiting that select cannot see
                watched.append(raw)
            artim = self.artim_timer
            if (
                artim.timeout is not None
                and artim._start_time is not None
                and artim._end_time is None
            ):
                timeout = min(timeout, max(artim.remaining, 0.0))
        # A socket closed under us: the next round notices it (Evt17).
        with contextlib.suppress(OSError, ValueError):
            select.select(watched, [], [], timeout)
        self.wakeup.clear()


class QuietAcceptor(Association):
    """An acceptor association whose thread sleeps until its ``QuietDUL`` has news.

    ``before_release`` runs when the peer asks for a release, before it is answered.
    An association that reports no progress (``mark_progress``) for ``max_idle_s``
    seconds, and is not in the middle of receiving a message, is aborted: the network
    idle timer restarts with every message, so a peer sending a C-ECHO now and then
    kept its slot for good.
    """

    dul: QuietDUL
    before_release: Callable[[], object] | None = None
    max_idle_s: float | None = None
    _last_progress = 0.0

    def mark_progress(self) -> None:
        """Restart the ``max_idle_s`` deadline (the subclass's notion of progress)."""
        self._last_progress = time.monotonic()

    def kill(self) -> None:
        """Stop the association's thread, waking it to notice."""
        self._kill = True
        self.dul.delivered.set()
        super().kill()

    def _abort_and_stop(self) -> None:
        """Abort, and end the thread as soon as the DUL is idle again.

        pynetdicom's blocking ``abort`` sleeps another 0.1 s after that, and the slot
        stays counted (``max_associations``) until this thread ends: a sender that
        reconnected at once after the abort was refused.
        """
        self.abort(block=False)
        self.kill()

    def _run_reactor(self) -> None:
        """pynetdicom's acceptor loop, with its 1 ms sleep replaced by ``_await_news``."""
        self._is_paused = False
        self.mark_progress()
        while not self._kill:
            # Parked: not touching the queues (``release`` and the ``send_*`` methods
            # pause the reactor and wait for this flag).
            self._is_paused = True
            self._await_news()
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, message = self.dimse.get_msg(block=False)
            if message:
                self._serve_request(message, context_id)  # type: ignore[arg-type]

            if self.is_established and self.acse.is_release_requested():
                if self.before_release is not None:
                    self.before_release()
                self.acse.send_release(is_response=True)
                logger.debug("association released")
                self.is_released, self.is_established = True, False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)  # so EVT_ACSE_RECV fires
                self.is_aborted, self.is_established = True, False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self._progress_overdue():
                logger.warning(
                    "association from %s at %s made no progress in %.0f s "
                    "(network.max_idle_association_s); aborting",
                    self.requestor.ae_title,
                    self.requestor.address,
                    self.max_idle_s,
                    extra={"peer": self.requestor.address},
                )
                self._abort_and_stop()
                return

            if self.dul.idle_timer_expired():
                logger.warning("network timeout reached", extra={"peer": self.requestor.address})
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                    self.kill()
                else:
                    self._abort_and_stop()
                return

    def _progress_left(self) -> float | None:
        """Seconds until the ``max_idle_s`` deadline; None without one."""
        if self.max_idle_s is None:
            return None
        return self._last_progress + self.max_idle_s - time.monotonic()

    def _progress_overdue(self) -> bool:
        """Past the deadline, with no message being received (that one has its own pace)
        nor one received and not yet served."""
        left = self._progress_left()
        return (
            left is not None
            and left <= 0
            and self.dimse.message is None
            and self.dimse.msg_queue.empty()
        )

    def _await_news(self) -> None:
        """Return when the DUL may have delivered something, or the idle timer may be due."""
        if not self.dimse.msg_queue.empty():
            return
        if not self.dul.to_user_queue.empty():
            # A primitive this loop may not consume: look again soon, as pynetdicom did.
            time.sleep(0.001)
            return
        timeout = _SAFETY_WAIT_S
        idle = self.dul._idle_timer
        if idle.timeout is not None:
            timeout = min(timeout, max(idle.remaining, 0.0))
        progress_left = self._progress_left()
        if progress_left is not None:
            timeout = min(timeout, max(progress_left, 0.0))
        self.dul.delivered.wait(timeout)
        self.dul.delivered.clear()
