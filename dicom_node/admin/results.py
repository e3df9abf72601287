"""Export of the per-joint measurements for statistics software (CSV or JSON)."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Any

from dicom_node.db import Database
from dicom_node.db.measurements import EXPORT_COLUMNS, export_rows


class ExportFormat(StrEnum):
    """What ``blsnode results export`` writes."""

    CSV = "csv"
    JSON = "json"


def export_measurements(
    database: Database, fmt: ExportFormat, study_instance_uid: str | None = None
) -> str:
    """Every joint of every processed radiograph (or of one study) as CSV or JSON text.

    CSV: a header of :data:`EXPORT_COLUMNS`, one line per joint, empty cells for values
    that were not measured. JSON: an array of objects with the same keys.
    """
    with database.sessions.begin() as session:
        rows = export_rows(session, study_instance_uid)
    return _render(rows, ExportFormat(fmt))


def _render(rows: list[dict[str, Any]], fmt: ExportFormat) -> str:
    if fmt is ExportFormat.JSON:
        return json.dumps(rows, indent=1) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
