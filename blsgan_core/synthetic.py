"""Synthetic overlaps for pre-training: move two separate bones into each other.

From a joint image whose bones do not overlap, the ground-truth layers are simply
``Lg_i = J * M_i``. Moving the upper bone down and the lower bone up (the bone axis is
vertical in these crops), each with a small lateral jitter, makes them overlap; Eq. 1
composes the moved layers with ``k = 1 - mean(B over the new overlap)``, B being the
Laplace soft-tissue background, and B fills everything outside the moved bones (including
the strip a bone moved away from). The result is an overlapping joint whose layers and k
are known exactly.

Choices, and why:

- Integer shifts: masks stay binary and layers are moved without interpolation, so Eq. 1
  with the returned layers and k reproduces the image exactly.
- Shifts per bone uniform in ``[min_shift, max_shift]`` = [1, 8] px: the bones of these
  crops nearly touch, and 2-16 px of closing gives overlaps of a few hundred pixels, the
  range of real overlaps (median 196 px, mean ~400 px without annotation errors). The
  reference used 2-8 px per bone, vertical only; the lateral jitter (default +-2 px)
  adds the small sideways offsets real overlaps show.
- Where a bone leaves the image edge (the proximal phalanx runs off the top, the
  metacarpal off the bottom), the rows it vacates at that edge repeat its edge row: the
  bone continues beyond the crop, it does not end there. The reference instead cropped 8 px
  off every synthetic image and resized, which changes the pixel scale of synthetic
  images only.
- Sources with a few intersecting pixels (the authors call < 20 px "non-overlapping")
  would count those pixels in both layers; they are removed from the upper mask first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from blsgan_core.laplace import soft_tissue_background
from blsgan_core.reconstruction import reconstruct, transmittance_from_background

ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True)
class SyntheticConfig:
    """Ranges of the random displacements, in pixels."""

    min_shift: int = 1
    max_shift: int = 8
    lateral_jitter: int = 2

    def __post_init__(self) -> None:
        if not 0 <= self.min_shift <= self.max_shift:
            raise ValueError(
                f"need 0 <= min_shift <= max_shift, got {self.min_shift}, {self.max_shift}"
            )
        if self.lateral_jitter < 0:
            raise ValueError(f"lateral_jitter must be >= 0, got {self.lateral_jitter}")


@dataclass(frozen=True)
class Shifts:
    """Displacement of each bone: ``upper_down``/``lower_up`` along the axis (towards each
    other), ``*_right`` sideways (negative = left)."""

    upper_down: int
    lower_up: int
    upper_right: int = 0
    lower_right: int = 0


@dataclass(frozen=True)
class SyntheticOverlap:
    """A synthetic overlapping joint and its exact ground truth."""

    image: NDArray[np.float32]
    upper: NDArray[np.bool_]
    lower: NDArray[np.bool_]
    layers: NDArray[np.float32]
    k: float
    shifts: Shifts

    @property
    def masks(self) -> NDArray[np.bool_]:
        """``(2, H, W)``: upper then lower."""
        return np.stack([self.upper, self.lower])

    @property
    def overlap_px(self) -> int:
        """Pixels inside both moved bones."""
        return int(np.count_nonzero(self.upper & self.lower))


def draw_shifts(rng: np.random.Generator, config: SyntheticConfig | None = None) -> Shifts:
    """Random displacements from ``config``'s ranges (reproducible with a seeded ``rng``)."""
    config = config or SyntheticConfig()
    along = rng.integers(config.min_shift, config.max_shift + 1, size=2)
    side = rng.integers(-config.lateral_jitter, config.lateral_jitter + 1, size=2)
    return Shifts(int(along[0]), int(along[1]), int(side[0]), int(side[1]))


def shift_array(array: NDArray[ScalarT], down: int, right: int) -> NDArray[ScalarT]:
    """Move ``array`` by ``down`` rows and ``right`` columns.

    Rows vacated at the top or bottom edge repeat the edge row (a bone that runs off the
    crop continues); columns vacated at the sides are zero.
    """
    height, width = array.shape
    if abs(down) >= height or abs(right) >= width:
        raise ValueError(f"shift ({down}, {right}) is larger than the image {array.shape}")
    padded = np.pad(array, ((max(down, 0), max(-down, 0)), (0, 0)), mode="edge")
    moved = padded[max(-down, 0) : max(-down, 0) + height]
    result = np.zeros_like(array)
    if right >= 0:
        result[:, right:] = moved[:, : width - right]
    else:
        result[:, :right] = moved[:, -right:]
    return result


def synthesize_with_shifts(
    image: NDArray[np.floating],
    upper: NDArray[np.bool_],
    lower: NDArray[np.bool_],
    shifts: Shifts,
    background: NDArray[np.floating] | None = None,
) -> SyntheticOverlap:
    """Move the bones by ``shifts`` and compose them with Eq. 1 onto the background.

    ``background`` is the Laplace soft-tissue background of ``image``; computed with the
    default settings of :func:`blsgan_core.laplace.soft_tissue_background` when omitted.
    """
    image = np.asarray(image, dtype=np.float32)
    upper = np.asarray(upper, dtype=bool)
    lower = np.asarray(lower, dtype=bool)
    if image.ndim != 2 or image.shape != upper.shape or image.shape != lower.shape:
        raise ValueError(
            f"image and masks must be 2-D of one shape, got {image.shape}, {upper.shape}, "
            f"{lower.shape}"
        )
    if background is None:
        background = soft_tissue_background(image, np.stack([upper, lower]))
    background = np.asarray(background, dtype=np.float32)
    if background.shape != image.shape:
        raise ValueError(f"background {background.shape} does not match image {image.shape}")
    upper = upper & ~lower
    moved_upper = shift_array(upper, shifts.upper_down, shifts.upper_right)
    moved_lower = shift_array(lower, -shifts.lower_up, shifts.lower_right)
    layers = np.stack(
        [
            shift_array(image * upper, shifts.upper_down, shifts.upper_right),
            shift_array(image * lower, -shifts.lower_up, shifts.lower_right),
        ]
    ).astype(np.float32)
    overlap = moved_upper & moved_lower
    union = moved_upper | moved_lower
    # Without an overlap k does not enter Eq. 1; report the bones' soft tissue instead.
    region = overlap if overlap.any() else union
    k = float(transmittance_from_background(float(background[region].mean())))
    composed = reconstruct(
        torch.from_numpy(layers)[None],
        torch.from_numpy(np.stack([moved_upper, moved_lower]).astype(np.float32))[None],
        k,
    )[0, 0].numpy()
    result = np.where(union, composed, background).astype(np.float32)
    return SyntheticOverlap(result, moved_upper, moved_lower, layers, k, shifts)


def synthesize_overlap(
    image: NDArray[np.floating],
    upper: NDArray[np.bool_],
    lower: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    background: NDArray[np.floating] | None = None,
    config: SyntheticConfig | None = None,
) -> SyntheticOverlap:
    """A synthetic overlap with random displacements drawn from ``rng``."""
    return synthesize_with_shifts(image, upper, lower, draw_shifts(rng, config), background)
