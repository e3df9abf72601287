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

``SyntheticConfig.hidden_edge_sigma`` (not the paper's, off by default) softens the
outline of each moved bone where it lies inside the other bone; see its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from blsgan_core.laplace import soft_tissue_background
from blsgan_core.reconstruction import reconstruct, transmittance_from_background

ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True)
class SyntheticConfig:
    """Ranges of the random displacements, in pixels, and how the bones are composed.

    ``hidden_edge_sigma`` (px; 0 = off, the paper's composition): where a moved bone's
    outline lies inside the other bone, its mask enters Eq. 1 blurred by a Gaussian of
    this width (its texture continued beyond the outline), so the bone's contribution
    ramps up across the hidden outline instead of starting at one pixel. Why: on the
    annotated real overlaps of ``mcp_joints`` the input rises by about 0.1 over some
    7 px around the annotated overlap boundary, most steeply 1-2 px outside it, while the
    default synthetic overlaps step up by 0.14 between the two pixels that straddle the
    boundary (the moved layer ``J * M`` is cut at its mask);
    ``benchmarks/overlap_statistics.py`` and docs/science.md ("Real against synthetic
    overlaps"). With it on, the true layers and masks are unchanged, but Eq. 1 with them
    no longer reproduces the image within about ``2 * hidden_edge_sigma`` px of a hidden
    outline, as it does not on the annotated real overlaps.

    ``hard_edge_fraction`` (with ``hidden_edge_sigma`` > 0; not the paper's): this share of
    the overlaps is still composed with Eq. 1's hard edge, drawn per overlap, so that a
    model learns both compositions (each model trained on one alone was best on it and
    worse on the other; docs/training.md, session 9). 0 draws nothing: the random stream,
    and so every overlap, is that of the same config without it.
    """

    min_shift: int = 1
    max_shift: int = 8
    lateral_jitter: int = 2
    hidden_edge_sigma: float = 0.0
    hard_edge_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_shift <= self.max_shift:
            raise ValueError(
                f"need 0 <= min_shift <= max_shift, got {self.min_shift}, {self.max_shift}"
            )
        if self.lateral_jitter < 0:
            raise ValueError(f"lateral_jitter must be >= 0, got {self.lateral_jitter}")
        if not 0 <= self.hidden_edge_sigma <= 8:
            raise ValueError(
                f"hidden_edge_sigma must be in [0, 8] px, got {self.hidden_edge_sigma}"
            )
        if not 0 <= self.hard_edge_fraction <= 1:
            raise ValueError(f"hard_edge_fraction must be in [0, 1], got {self.hard_edge_fraction}")


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
    *,
    hidden_edge_sigma: float = 0.0,
) -> SyntheticOverlap:
    """Move the bones by ``shifts`` and compose them with Eq. 1 onto the background.

    ``background`` is the Laplace soft-tissue background of ``image``; computed with the
    default settings of :func:`blsgan_core.laplace.soft_tissue_background` when omitted.
    ``hidden_edge_sigma``: see :class:`SyntheticConfig` (0: Eq. 1 as the paper writes it).
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
    masks = np.stack([moved_upper, moved_lower])
    if hidden_edge_sigma > 0:
        composed = compose_soft_hidden_edges(layers, masks, k, hidden_edge_sigma)
    else:
        composed = reconstruct(
            torch.from_numpy(layers)[None], torch.from_numpy(masks.astype(np.float32))[None], k
        )[0, 0].numpy()
    result = np.where(union, composed, background).astype(np.float32)
    return SyntheticOverlap(result, moved_upper, moved_lower, layers, k, shifts)


def compose_soft_hidden_edges(
    layers: NDArray[np.float32], masks: NDArray[np.bool_], k: float, sigma: float
) -> NDArray[np.float32]:
    """Eq. 1 with each bone's mask blurred by ``sigma`` px where it lies inside the other bone.

    Eq. 1 inside the masks is ``1 - k * prod_i(1 - w_i * a_i)`` with the bone's opacity
    ``a_i = 1 - (1 - L_i) / k`` and ``w_i = M_i``. Here ``a_i`` is continued beyond the
    outline with the value of the nearest bone pixel, and inside the other bone's mask
    next to the overlap (within the Gaussian's reach of it) ``w_i`` is the Gaussian-blurred
    mask; elsewhere ``w_i = M_i``, so visible outlines, which carry the source's own blur,
    are kept.
    Outside both masks the result is 0 (the caller puts the background there).
    """
    # Only next to the overlap: elsewhere the bones' outlines are visible ones, whose blur
    # (and any blur across a narrow joint space) the source image already carries.
    overlap = masks[0] & masks[1]
    near_overlap = ndimage.distance_transform_edt(~overlap) <= int(4 * sigma + 0.5) + 1
    factors = []
    for index in (0, 1):
        mask = masks[index]
        other = masks[1 - index]
        opacity = 1 - (1 - layers[index]) / k
        if not mask.any():
            factors.append(np.ones_like(opacity))
            continue
        nearest = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
        continued = opacity[tuple(np.asarray(nearest))]
        blurred = ndimage.gaussian_filter(mask.astype(np.float32), sigma, mode="nearest")
        weight = np.where(other & near_overlap, blurred, mask.astype(np.float32))
        factors.append(1 - weight * continued)
    union = masks[0] | masks[1]
    return np.where(union, 1 - k * factors[0] * factors[1], 0.0).astype(np.float32)


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
    config = config or SyntheticConfig()
    shifts = draw_shifts(rng, config)
    sigma = config.hidden_edge_sigma
    if sigma > 0 and config.hard_edge_fraction > 0 and rng.random() < config.hard_edge_fraction:
        sigma = 0.0
    return synthesize_with_shifts(image, upper, lower, shifts, background, hidden_edge_sigma=sigma)
