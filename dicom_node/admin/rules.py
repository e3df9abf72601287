"""Routing rules against a stored instance: what would the node do with it now?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError
from pynetdicom.dsutils import split_dataset

from dicom_node.db import Database
from dicom_node.db.instances import get_instance
from dicom_node.receive.header import InstanceHeader, read_header
from dicom_node.route.rules import decide, rule_matches
from dicom_node.send.destinations import all_destinations
from dicom_node.settings import Settings


def file_header(path: Path, max_bytes: int) -> InstanceHeader:
    """The routing header of a stored file; ``ValueError`` if it cannot be read."""
    try:
        file_meta, offset = split_dataset(path)
        data = path.read_bytes()
        return read_header(memoryview(data)[offset:], str(file_meta.TransferSyntaxUID), max_bytes)
    except (OSError, AttributeError, KeyError, InvalidDicomError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error


def check_rules(settings: Settings, database: Database, instance_id: int) -> dict[str, Any]:
    """Each rule's verdict on stored instance ``instance_id``, and the decision they make."""
    with database.reader() as session:
        instance = get_instance(session, instance_id)
        if instance is None:
            raise ValueError(f"no stored instance with id {instance_id}")
        path = Path(instance.path)
        destinations = all_destinations(settings, session)
    header = file_header(path, settings.storage.max_dataset_bytes)
    decision = decide(header, settings.rules, destinations, settings.outputs)
    return {
        "instance_id": instance_id,
        "header": {
            "modality": header.modality,
            "body_part_examined": header.body_part_examined,
            "view_position": header.view_position,
            "sop_class_uid": header.sop_class_uid,
            "series_description": header.series_description,
            "study_description": header.study_description,
            "manufacturer": header.manufacturer,
        },
        "rules": [{"name": r.name, "matches": rule_matches(r, header)} for r in settings.rules],
        "decision": {
            "rule": decision.rule,
            "process": decision.process,
            "result_destinations": list(decision.result_destinations),
            "original_destinations": list(decision.original_destinations),
            "own_output": decision.own_output,
        },
    }
