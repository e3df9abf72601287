"""Logging for every node process: one logger per module, plain or JSON lines, no PHI at INFO+.

Modules call ``logging.getLogger(__name__)``. Patient identifiers may be attached to a
record only through ``extra=`` under one of ``PHI_FIELDS``; ``PHIFilter`` blanks them on
records at INFO and above, so an identifier reaches a log only when an operator turns on
DEBUG on purpose.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dicom_node.settings import LogFormat, LoggingSettings

PHI_FIELDS = frozenset(
    {
        "patient_name",
        "patient_id",
        "patient_birth_date",
        "patient_sex",
        "patient_age",
        "other_patient_ids",
        "accession_number",
        "referring_physician",
        "institution_name",
    }
)
REDACTED = "<redacted>"

# Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_RECORD_FIELDS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller attached with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_FIELDS}


class PHIFilter(logging.Filter):
    """Blank patient identifiers carried in ``extra=`` fields on records at INFO and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            for name in PHI_FIELDS.intersection(record.__dict__):
                setattr(record, name, REDACTED)
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(record_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class PlainFormatter(logging.Formatter):
    """Human-readable lines; extras appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = record_extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return line


def build_formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter for a configured format."""
    return JSONFormatter() if log_format is LogFormat.JSON else PlainFormatter()


# Libraries that log routine steps at INFO: Alembic ("Context impl SQLiteImpl" before
# every command), highdicom (every module it copies), pynetdicom (every request).
LIBRARY_LOGGERS = ("alembic", "highdicom", "pynetdicom")
# pydicom's warnings quote element values ("Invalid value for VR DA: '...'"): a malformed
# birth date or name would reach the log. Its logger and its Python warnings are kept for
# DEBUG sessions only.
VALUE_QUOTING_LOGGER = "pydicom"


def configure_logging(settings: LoggingSettings, log_dir: Path | None = None) -> None:
    """Install handlers on the root logger: stderr, and a rotating file in ``log_dir``.

    Library chatter is kept for DEBUG sessions: those loggers log WARNING and above
    unless the configured level is DEBUG.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = build_formatter(settings.format)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.to_file and log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "blsnode.log", maxBytes=20 << 20, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(PHIFilter())
        root.addHandler(handler)
    root.setLevel(settings.level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    quiet = root.level > logging.DEBUG
    logging.getLogger(VALUE_QUOTING_LOGGER).setLevel(logging.ERROR if quiet else logging.DEBUG)
    if quiet:
        warnings.filterwarnings("ignore", module=rf"{VALUE_QUOTING_LOGGER}(\.|$)")
