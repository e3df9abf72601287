"""The result page's content from the stored files: joints, their pictures, their numbers.

A result is read from what the node keeps: the spooled source, the Segmentation (masks),
the Secondary Captures (layers, labelled ``MCP2 L upper: ...`` in Image Comments) and the
Structured Report (numbers per measurement group, named ``MCP2 L ...`` by its tracking
identifier). Nothing here knows how the numbers were computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicom_node.web.images import (
    joint_region,
    overlay,
    png_bytes,
    read_segments,
    source_grey,
    stored_image,
)

LAYERS = ("upper", "lower", "reconstruction")


def _outputs(details: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in details["outputs"] if o["kind"] == kind]


def _segmentation_path(details: dict[str, Any]) -> Path:
    found = _outputs(details, "seg")
    if not found:
        raise LookupError("no Segmentation stored for this radiograph")
    return Path(found[0]["path"])


def overlay_picture(details: dict[str, Any]) -> bytes:
    """PNG of the radiograph with every segment's outline."""
    return png_bytes(
        overlay(source_grey(Path(details["path"])), read_segments(_segmentation_path(details)))
    )


def region_picture(details: dict[str, Any], joint_key: str) -> bytes | None:
    """PNG of one joint's region of the source; ``None`` if the joint has no bones."""
    region = joint_region(
        source_grey(Path(details["path"])), read_segments(_segmentation_path(details)), joint_key
    )
    return None if region is None else png_bytes(region)


def output_picture(path: Path) -> bytes:
    """PNG of a stored Secondary Capture."""
    return png_bytes(stored_image(path))


def _content(items: Any) -> Iterator[Dataset]:
    for item in items or []:
        yield item
        yield from _content(item.get("ContentSequence"))


def _meaning(item: Dataset, keyword: str = "ConceptNameCodeSequence") -> str:
    sequence = item.get(keyword)
    return str(sequence[0].CodeMeaning) if sequence else ""


def report_numbers(path: Path) -> dict[str, list[dict[str, str]]]:
    """The numbers of a Structured Report by joint (``MCP2 L``), in the report's order.

    Every container with a Tracking Identifier is a measurement group; its NUM items are
    the numbers (name, value, unit code).
    """
    report = dcmread(path)
    by_joint: dict[str, list[dict[str, str]]] = {}
    for item in _content(report.get("ContentSequence")):
        if item.get("ValueType") != "CONTAINER":
            continue
        children = list(item.get("ContentSequence") or [])
        identifier = next(
            (str(c.TextValue) for c in children if _meaning(c) == "Tracking Identifier"), None
        )
        if identifier is None:
            continue
        joint_key = " ".join(identifier.split()[:2])
        for child in children:
            if child.get("ValueType") != "NUM" or not child.get("MeasuredValueSequence"):
                continue
            measured = child.MeasuredValueSequence[0]
            unit = measured.MeasurementUnitsCodeSequence[0].CodeValue
            by_joint.setdefault(joint_key, []).append(
                {
                    "name": _meaning(child),
                    "value": f"{float(measured.NumericValue):.4g}",
                    "unit": "" if unit == "1" else str(unit),
                    "group": identifier,
                }
            )
    return by_joint


def result_view(details: dict[str, Any]) -> dict[str, Any]:
    """Per joint: the ids of its layer pictures and its numbers; and what is missing."""
    joints: dict[str, dict[str, Any]] = {}
    for output in _outputs(details, "sc"):
        comments = str(dcmread(output["path"], stop_before_pixels=True).get("ImageComments", ""))
        label = comments.split(":", 1)[0].split()
        if len(label) != 3 or label[2] not in LAYERS:
            continue  # the overview montage
        key = f"{label[0]} {label[1]}"
        joints.setdefault(key, {"key": key, "layers": {}, "numbers": []})["layers"][label[2]] = (
            output["id"]
        )
    for output in _outputs(details, "sr"):
        for key, numbers in report_numbers(Path(output["path"])).items():
            joints.setdefault(key, {"key": key, "layers": {}, "numbers": []})["numbers"] += numbers
    overview = next(
        (o["id"] for o in _outputs(details, "sc") if not _is_joint_picture(o, joints)), None
    )
    return {
        "joints": [joints[key] for key in sorted(joints, key=_joint_order)],
        "has_segmentation": bool(_outputs(details, "seg")),
        "overview_id": overview,
        "layers": LAYERS,
    }


def _is_joint_picture(output: dict[str, Any], joints: dict[str, dict[str, Any]]) -> bool:
    return any(output["id"] in joint["layers"].values() for joint in joints.values())


def _joint_order(key: str) -> tuple[str, str]:
    joint, side = key.split(" ", 1)
    return side, joint
