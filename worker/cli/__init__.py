"""Command-line entry points of the worker package (``blsnode worker``, ``process``, ...)."""

from __future__ import annotations

import logging

# Libraries that log routine steps at INFO (highdicom: every module it copies).
CHATTY_LOGGERS = ("highdicom",)


def quiet_libraries() -> None:
    """Keep library chatter for DEBUG sessions: WARNING unless the root logs DEBUG."""
    level = max(logging.WARNING, logging.getLogger().level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
