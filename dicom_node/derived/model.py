"""What the worker hands to the DICOM builders: plain dataclasses of numpy arrays.

``dicom_node`` never imports torch; the worker converts network outputs into these
objects, and every builder in this package reads only them and the source dataset. The
constructors validate shapes, types and ranges so that a builder never writes a
malformed object from a malformed result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np

from dicom_node.derived.outlines import Window, bounding_box


class Side(StrEnum):
    """Which hand, as the DICOM laterality letter."""

    LEFT = "L"
    RIGHT = "R"


class Joint(StrEnum):
    """The metacarpophalangeal joints, thumb (MCP1) to little finger (MCP5)."""

    MCP1 = "MCP1"
    MCP2 = "MCP2"
    MCP3 = "MCP3"
    MCP4 = "MCP4"
    MCP5 = "MCP5"

    @property
    def finger(self) -> str:
        """The digit the joint belongs to, as a reader names it."""
        return _FINGERS[self]


_FINGERS = {
    Joint.MCP1: "thumb",
    Joint.MCP2: "index finger",
    Joint.MCP3: "middle finger",
    Joint.MCP4: "ring finger",
    Joint.MCP5: "little finger",
}


class Layer(StrEnum):
    """The crop-level images of one joint that become Secondary Capture images."""

    UPPER = "upper"
    LOWER = "lower"
    RECONSTRUCTION = "reconstruction"


@dataclass(frozen=True)
class ModelInfo:
    """Name and version of the model that produced the results (from its checkpoint).

    The version enters every derived UID: results of another model version are new
    objects, a re-run with the same version replaces the old ones.
    """

    name: str
    version: str

    def __post_init__(self) -> None:
        for field_name in ("name", "version"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"model {field_name} must be a non-empty string, got {value!r}")
            if len(value) > 64:
                raise ValueError(f"model {field_name} {value!r} exceeds 64 characters (DICOM LO)")


@dataclass(frozen=True)
class ReconstructionError:
    """How well Eq. 1's reconstruction R matches the joint crop J."""

    mse: float
    ssim: float
    psnr: float

    def __post_init__(self) -> None:
        for field_name in ("mse", "ssim", "psnr"):
            value = getattr(self, field_name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{field_name} must be a finite number, got {value!r}")
        if self.mse < 0:
            raise ValueError(f"mse must be >= 0, got {self.mse}")
        if not -1.0 <= self.ssim <= 1.0:
            raise ValueError(f"ssim must be in [-1, 1], got {self.ssim}")


class LengthUnit(StrEnum):
    """Unit of a joint's widths, as its UCUM code: mm with a pixel spacing, else pixels."""

    MILLIMETER = "mm"
    PIXELS = "{pixels}"


class SpacingSource(StrEnum):
    """Where the millimetres come from (the attribute), or that there are none."""

    PIXEL_SPACING = "PixelSpacing"
    IMAGER_PIXEL_SPACING = "ImagerPixelSpacing"
    NONE = "none"

    @property
    def caveat(self) -> str | None:
        """What a reader must know about widths on this scale (``None``: calibrated)."""
        return _CAVEATS.get(self)


_CAVEATS = {
    SpacingSource.IMAGER_PIXEL_SPACING: (
        "mm at the detector (Imager Pixel Spacing): not corrected for the radiographic "
        "magnification, so anatomy is slightly overestimated"
    ),
    SpacingSource.NONE: "no pixel spacing in the source: widths in source pixels",
}


@dataclass(frozen=True)
class JointSpace:
    """Joint space width of one joint along the finger axis (negative = bones overlap).

    ``min_width`` and ``mean_width`` over the central part of the joint, ``overlap_depth``
    = ``max(0, -min_width)``; all in ``unit`` (mm, or source pixels without spacing).
    """

    min_width: float
    mean_width: float
    overlap_depth: float
    unit: LengthUnit
    spacing: SpacingSource

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", LengthUnit(self.unit))
        object.__setattr__(self, "spacing", SpacingSource(self.spacing))
        for name in ("min_width", "mean_width", "overlap_depth"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"joint space {name} must be a finite number, got {value!r}")
        if self.overlap_depth < 0 or self.min_width > self.mean_width + 1e-9:
            raise ValueError(
                f"inconsistent joint space: min {self.min_width}, mean {self.mean_width}, "
                f"depth {self.overlap_depth}"
            )
        if (self.unit is LengthUnit.PIXELS) != (self.spacing is SpacingSource.NONE):
            raise ValueError(f"unit {self.unit} does not fit the spacing source {self.spacing}")


@dataclass(frozen=True)
class JointSpaceChange:
    """JSW now minus JSW on the patient's previous radiograph of this hand (same scale).

    Negative = the joint space narrowed. ``min_change`` and ``mean_change`` subtract the
    two radiographs' own widths; ``registered_change`` is the change at the joint centre
    found by registering each bone's prior layer onto its layer now
    (``blsgan_core.progression``), ``None`` when the prior's layers are not at hand.
    ``interval_days`` from the two study dates (``None`` if either is unknown, and then
    no rate).
    """

    min_change: float
    mean_change: float
    unit: LengthUnit
    interval_days: int | None
    prior_sop_instance_uid: str
    registered_change: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", LengthUnit(self.unit))
        for name in ("min_change", "mean_change", "registered_change"):
            value = getattr(self, name)
            if name == "registered_change" and value is None:
                continue
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"joint space {name} must be a finite number, got {value!r}")
        if self.interval_days is not None and self.interval_days <= 0:
            raise ValueError(f"a prior must be older, got {self.interval_days} days")
        if not self.prior_sop_instance_uid:
            raise ValueError("a change needs the prior radiograph's SOP Instance UID")

    @property
    def min_change_per_year(self) -> float | None:
        """Change of the minimum width per year (365.25 days), if the interval is known."""
        if self.interval_days is None:
            return None
        return self.min_change * 365.25 / self.interval_days

    @property
    def registered_change_per_year(self) -> float | None:
        """The registered change per year (365.25 days), if both are known."""
        if self.interval_days is None or self.registered_change is None:
            return None
        return self.registered_change * 365.25 / self.interval_days


@dataclass(frozen=True, eq=False)
class JointResult:
    """One joint: bone masks on the source grid and the separated layers of its crop.

    Attributes
    ----------
    joint
        Which MCP joint.
    upper_mask, lower_mask
        bool (rows, columns) on the source image grid: base of the proximal phalanx
        (upper) and metacarpal head (lower); they may intersect, which is the overlap.
    crop
        The joint crop J the network saw, float in [0, 1], usually 256 x 256.
    upper_layer, lower_layer, reconstruction
        The layer images L1, L2 and Eq. 1's reconstruction R, same shape as ``crop``.
    k
        Eq. 1's correction parameter (soft-tissue transmittance), > 0.
    error
        Reconstruction error of R against J.
    space
        Joint space width along the finger axis, ``None`` when the masks share no column.
    change
        JSW change since the patient's previous radiograph of this hand, if there is one.
    crop_corners
        float (4, 2): the corners of the crop J on the source grid as (column, row) in
        DICOM pixel coordinates (pixel centres at index + 0.5), in order around it. The
        SR's region of a joint whose bones were not found at all (else ``None`` is fine).
    """

    joint: Joint
    upper_mask: np.ndarray
    lower_mask: np.ndarray
    crop: np.ndarray
    upper_layer: np.ndarray
    lower_layer: np.ndarray
    reconstruction: np.ndarray
    k: float
    error: ReconstructionError
    space: JointSpace | None = None
    change: JointSpaceChange | None = None
    crop_corners: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint", Joint(self.joint))
        corners = self.crop_corners
        if corners is not None and (
            not isinstance(corners, np.ndarray)
            or corners.shape != (4, 2)
            or not np.all(np.isfinite(corners))
        ):
            raise ValueError(f"{self.joint} crop_corners must be 4 finite (column, row) points")
        if self.space is not None and not isinstance(self.space, JointSpace):
            raise TypeError(f"{self.joint} space must be a JointSpace or None")
        if self.change is not None and (self.space is None or self.change.unit != self.space.unit):
            raise ValueError(f"{self.joint} change needs a joint space in the same unit")
        for name in ("upper_mask", "lower_mask"):
            mask = getattr(self, name)
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.ndim != 2:
                raise TypeError(
                    f"{self.joint} {name} must be a 2-D bool array, got {_describe(mask)}"
                )
        if self.upper_mask.shape != self.lower_mask.shape:
            raise ValueError(
                f"{self.joint} mask shapes differ: {self.upper_mask.shape} vs "
                f"{self.lower_mask.shape}"
            )
        for name in ("crop", "upper_layer", "lower_layer", "reconstruction"):
            image = getattr(self, name)
            if not isinstance(image, np.ndarray) or image.ndim != 2:
                raise TypeError(f"{self.joint} {name} must be a 2-D array, got {_describe(image)}")
            if image.shape != self.crop.shape:
                raise ValueError(
                    f"{self.joint} {name} has shape {image.shape}, the crop {self.crop.shape}"
                )
            if not np.issubdtype(image.dtype, np.floating):
                raise TypeError(f"{self.joint} {name} must be floating point, got {image.dtype}")
            if not np.all(np.isfinite(image)) or image.min() < 0.0 or image.max() > 1.0:
                raise ValueError(f"{self.joint} {name} must hold finite values in [0, 1]")
        if not isinstance(self.k, int | float) or not math.isfinite(self.k) or self.k <= 0:
            raise ValueError(f"{self.joint} k must be a finite number > 0, got {self.k!r}")
        if not isinstance(self.error, ReconstructionError):
            raise TypeError(f"{self.joint} error must be a ReconstructionError")

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the source image the masks lie on."""
        rows, columns = self.upper_mask.shape
        return int(rows), int(columns)

    @cached_property
    def window(self) -> Window:
        """Rows and columns of the smallest box that holds both bones (empty if no pixel).

        The masks span the whole radiograph, the bones a few thousand of its megapixels:
        what is derived from the masks is looked for inside this box only.
        """
        boxes = [box for box in map(bounding_box, (self.upper_mask, self.lower_mask)) if box]
        if not boxes:
            return slice(0, 0), slice(0, 0)
        top, bottom = min(box[0] for box in boxes), max(box[1] for box in boxes)
        left, right = min(box[2] for box in boxes), max(box[3] for box in boxes)
        return slice(top, bottom + 1), slice(left, right + 1)

    @cached_property
    def overlap_mask(self) -> np.ndarray:
        """Where the two bones project onto each other (source grid).

        Computed once, inside ``window``: the SEG, the SR, the overview and the reports
        all ask for it.
        """
        overlap = np.zeros(self.grid_shape, dtype=np.bool_)
        overlap[self.window] = self.upper_mask[self.window] & self.lower_mask[self.window]
        return overlap

    @cached_property
    def overlap_area_px(self) -> int:
        """Overlap area in source pixels; derived from the masks so it cannot disagree."""
        return int(np.count_nonzero(self.overlap_mask[self.window]))

    def overlap_area_mm2(self, spacing_mm: tuple[float, float]) -> float:
        """Overlap area in mm^2 for a (row, column) pixel spacing in mm."""
        row, column = spacing_mm
        if not (row > 0 and column > 0):
            raise ValueError(f"pixel spacing must be positive, got {spacing_mm}")
        return self.overlap_area_px * row * column

    def layer(self, layer: Layer) -> np.ndarray:
        """The crop-level image of ``layer``."""
        return {
            Layer.UPPER: self.upper_layer,
            Layer.LOWER: self.lower_layer,
            Layer.RECONSTRUCTION: self.reconstruction,
        }[Layer(layer)]


@dataclass(frozen=True, eq=False)
class HandResult:
    """All joints found on one hand, thumb first."""

    side: Side
    joints: tuple[JointResult, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", Side(self.side))
        joints = tuple(self.joints)
        if not joints:
            raise ValueError(f"hand {self.side} has no joints")
        if any(not isinstance(joint, JointResult) for joint in joints):
            raise TypeError(f"hand {self.side} joints must be JointResult objects")
        names = [joint.joint for joint in joints]
        if len(set(names)) != len(names):
            raise ValueError(f"hand {self.side} lists a joint twice: {[str(n) for n in names]}")
        shapes = {joint.grid_shape for joint in joints}
        if len(shapes) != 1:
            raise ValueError(f"hand {self.side} joints lie on different grids: {sorted(shapes)}")
        object.__setattr__(self, "joints", tuple(sorted(joints, key=lambda j: j.joint.value)))


@dataclass(frozen=True, eq=False)
class RadiographResult:
    """Everything one radiograph produced: one or two hands and the model that ran."""

    model: ModelInfo
    hands: tuple[HandResult, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelInfo):
            raise TypeError("model must be a ModelInfo")
        hands = tuple(self.hands)
        if not hands:
            raise ValueError("a radiograph result needs at least one hand")
        sides = [hand.side for hand in hands]
        if len(set(sides)) != len(sides):
            raise ValueError(f"a side appears twice: {[str(s) for s in sides]}")
        shapes = {hand.joints[0].grid_shape for hand in hands}
        if len(shapes) != 1:
            raise ValueError(f"hands lie on different grids: {sorted(shapes)}")
        # Right hand first: the order a reader scans a PA image of both hands.
        object.__setattr__(self, "hands", tuple(sorted(hands, key=lambda h: h.side != Side.RIGHT)))

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the source image."""
        return self.hands[0].joints[0].grid_shape

    def joints(self) -> Iterator[tuple[Side, JointResult]]:
        """Every joint with its hand's side, in report order."""
        for hand in self.hands:
            for joint in hand.joints:
                yield hand.side, joint


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
