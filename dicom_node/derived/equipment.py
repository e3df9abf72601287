"""General Equipment of every derived object: this node (settings) and the model that ran.

One place, so that the Segmentation, the Secondary Captures and the Structured Report
name their maker alike.
"""

from __future__ import annotations

from typing import TypedDict

from dicom_node.derived.model import ModelInfo
from dicom_node.settings import OutputSettings


class Equipment(TypedDict):
    """The General Equipment keywords of highdicom's object constructors."""

    manufacturer: str
    manufacturer_model_name: str
    software_versions: str
    device_serial_number: str


def equipment(outputs: OutputSettings, model: ModelInfo) -> Equipment:
    """Keyword arguments for a highdicom constructor: our manufacturer and serial, the model."""
    return Equipment(
        manufacturer=outputs.manufacturer,
        manufacturer_model_name=model.name,
        software_versions=model.version,
        device_serial_number=outputs.device_serial_number,
    )
