"""The one exception that means "this job cannot succeed, do not retry it".

Everything else a job can raise is either transient (database, broker, disk: Celery
retries it) or a bug. Keeping the permanent case a distinct type, not a ``ValueError``,
stops a programming error from being recorded as the radiograph's fault.
"""

from __future__ import annotations


class PermanentError(Exception):
    """A job that cannot succeed as things stand; ``reason`` is shown in ``blsnode jobs``.

    Examples: the image is not a greyscale radiograph, no hand is found, no BLS-GAN model
    is promoted. Retrying the same job without a change (another model, a fixed file)
    would fail the same way, so the task records the reason and stops.
    """

    def __init__(self, reason: str) -> None:
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"a permanent failure needs a reason, got {reason!r}")
        super().__init__(reason)
        self.reason = reason


class PriorPendingError(Exception):
    """The patient's prior was just fetched from the PACS: try this job again later.

    The prior arrives by C-STORE and is processed as its own job; retrying the follow-up
    after it lets the follow-up report its change. Transient by design (the task retries
    it with backoff); a prior still not processed on the retry is not waited for again.
    """
