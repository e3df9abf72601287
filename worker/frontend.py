"""Front end glue for the CLI and tasks: read a radiograph file, locate its MCP joints.

DICOM decoding belongs to ``dicom_node.pixels`` (imported only when a DICOM file comes
in, so PNG/JPEG use needs none of it); PNG and JPEG are read here with Pillow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from blsgan_core.joints import load_localiser, locate

DICOM_MAGIC_OFFSET = 128


@dataclass(frozen=True)
class SourceImage:
    """A radiograph as the front end needs it: bright = bone, float32, and its spacing."""

    pixels: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None


def is_dicom(path: Path) -> bool:
    """DICOM Part 10 files carry ``DICM`` after a 128-byte preamble."""
    with open(path, "rb") as handle:
        handle.seek(DICOM_MAGIC_OFFSET)
        return handle.read(4) == b"DICM"


def read_image(path: Path) -> SourceImage:
    """A DICOM, PNG or JPEG radiograph as float32 in [0, 1]; ``ValueError`` otherwise."""
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if is_dicom(path):
        from dicom_node.pixels import load_radiograph  # only DICOM input needs pydicom

        radiograph = load_radiograph(path)
        return SourceImage(np.asarray(radiograph.pixels, np.float32), radiograph.pixel_spacing_mm)
    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float32)
                array = array / max(float(array.max()), 1.0)
            else:
                array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except UnidentifiedImageError as error:
        raise ValueError(f"{path} is neither DICOM nor an image Pillow can read") from error
    return SourceImage(array, None)


def locate_file(path: Path, model_path: Path | None = None) -> dict[str, Any]:
    """``{"hands": [...]}`` for one radiograph file, in its source pixels.

    Raises ``NoHandFoundError`` (a ``ValueError``) when no hand is found.
    """
    source = read_image(path)
    hands = locate(source.pixels, load_localiser(model_path))
    return {
        "image": str(path),
        "shape": list(source.pixels.shape),
        "pixel_spacing_mm": list(source.pixel_spacing_mm) if source.pixel_spacing_mm else None,
        "hands": [hand.as_dict() for hand in hands],
    }
