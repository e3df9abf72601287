"""Each processed radiograph's joint layers on disk: the baseline a follow-up registers.

The SC objects show the layers as 8-bit pictures, windowed for reading; registering a
follow-up needs them as computed, with their masks and their crop's scale. One
compressed ``.npz`` per radiograph (``Settings.layers_dir / <SOP Instance UID>.npz``),
written atomically (temporary file, then rename) after the pipeline succeeded, so a
reader never sees half a file; a re-run replaces it. Per joint: ``layers`` (2, H, W)
float16 (upper, lower; [0, 1], 1/2048 resolution is finer than the 8-bit sources),
``masks`` (2, H, W) bool, and ``scale``: length per crop pixel along the finger axis in
the joint's length unit.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from blsgan_core.checkpoint import atomic_file


@dataclass(frozen=True)
class StoredJoint:
    """One joint's layers, masks and crop scale, as a later follow-up needs them."""

    layers: NDArray[np.float32]
    masks: NDArray[np.bool_]
    scale: float

    def __post_init__(self) -> None:
        if self.layers.ndim != 3 or self.layers.shape[0] != 2:
            raise ValueError(f"layers must be (2, H, W), got {self.layers.shape}")
        if self.masks.shape != self.layers.shape:
            raise ValueError(f"masks {self.masks.shape} differ from layers {self.layers.shape}")
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise ValueError(f"scale must be positive and finite, got {self.scale!r}")


def layers_file(folder: Path, sop_instance_uid: str) -> Path:
    """Where the layers of radiograph ``sop_instance_uid`` are kept."""
    if not sop_instance_uid or "/" in sop_instance_uid or sop_instance_uid.startswith("."):
        raise ValueError(f"not a SOP Instance UID: {sop_instance_uid!r}")
    return folder / f"{sop_instance_uid}.npz"


def save_joint_layers(path: Path, joints: dict[tuple[str, str], StoredJoint]) -> None:
    """Write ``joints`` (keyed by (side, joint)) to ``path`` atomically."""
    arrays: dict[str, NDArray[np.generic]] = {}
    for (side, joint), stored in joints.items():
        key = f"{side}-{joint}"
        arrays[f"{key}-layers"] = stored.layers.astype(np.float16)
        arrays[f"{key}-masks"] = stored.masks.astype(bool)
        arrays[f"{key}-scale"] = np.asarray(stored.scale, dtype=np.float64)
    with atomic_file(path) as stream:
        np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]  # numpy stub: allow_pickle


def load_joint_layers(path: Path) -> dict[tuple[str, str], StoredJoint]:
    """The joints stored at ``path``; empty when there is no file (never processed here).

    Raises ``ValueError`` for a file that is not a complete layers file.
    """
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            names = {name.rsplit("-", 1)[0] for name in data.files}
            joints = {}
            for key in sorted(names):
                side, joint = key.split("-", 1)
                joints[(side, joint)] = StoredJoint(
                    layers=data[f"{key}-layers"].astype(np.float32),
                    masks=data[f"{key}-masks"].astype(bool),
                    scale=float(data[f"{key}-scale"]),
                )
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"unreadable joint layers file {path}: {error}") from error
    return joints
