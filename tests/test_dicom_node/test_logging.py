"""Logging: format chosen by settings, identifiers only at DEBUG."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dicom_node.logging_setup import REDACTED, VALUE_QUOTING_LOGGER, configure_logging
from dicom_node.settings import LoggingSettings


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def _log_lines(log_dir: Path) -> list[str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return (log_dir / "blsnode.log").read_text().splitlines()


def test_json_lines_carry_extras_without_patient_identifiers(tmp_path: Path) -> None:
    configure_logging(LoggingSettings(format="json", level="DEBUG"), tmp_path)
    log = logging.getLogger("dicom_node.receive.scp")
    log.info("stored", extra={"sop_instance_uid": "1.2.3", "patient_name": "DOE^JANE"})
    log.debug("stored", extra={"patient_id": "PID-42"})
    info, debug = (json.loads(line) for line in _log_lines(tmp_path))
    assert info["level"] == "INFO"
    assert info["logger"] == "dicom_node.receive.scp"
    assert info["sop_instance_uid"] == "1.2.3"
    assert info["patient_name"] == REDACTED
    assert debug["patient_id"] == "PID-42"


def test_plain_format_and_level(tmp_path: Path) -> None:
    configure_logging(LoggingSettings(format="plain", level="WARNING"), tmp_path)
    log = logging.getLogger("worker.tasks")
    log.info("not shown")
    log.warning("job failed", extra={"job_id": 7, "accession_number": "ACC1"})
    (line,) = _log_lines(tmp_path)
    assert "WARNING worker.tasks: job failed" in line
    assert "job_id=7" in line
    assert "ACC1" not in line


def test_no_file_when_disabled(tmp_path: Path) -> None:
    configure_logging(LoggingSettings(to_file=False), tmp_path)
    logging.getLogger("x").warning("only stderr")
    assert not (tmp_path / "blsnode.log").exists()


def test_values_pydicom_quotes_stay_out_of_the_log_unless_debug(tmp_path: Path) -> None:
    pydicom_logger = logging.getLogger(VALUE_QUOTING_LOGGER)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            configure_logging(LoggingSettings(level="INFO"), tmp_path)
            ds = Dataset()
            ds.PatientBirthDate = "PHI-19700101"  # pydicom warns, quoting the value
        assert ds.PatientBirthDate == "PHI-19700101"
        assert not [w for w in caught if "PHI-" in str(w.message)]
        assert not [line for line in _log_lines(tmp_path) if "PHI-" in line]
        configure_logging(LoggingSettings(level="DEBUG"), tmp_path)
        Dataset().PatientBirthDate = "PHI-19700102"
        assert [line for line in _log_lines(tmp_path) if "PHI-19700102" in line]
    finally:
        pydicom_logger.setLevel(logging.NOTSET)
