"""Bone masks whose outlines are off by a pixel or two, as the node's segmenter gives them.

The node separates with the segmenter's masks, never with the annotated ones. On
held-out synthetic overlaps the shipped model's layer PSNR in the true overlap drops
from 29.7 dB with the true masks to 23.2 dB with the segmenter's (overlap Dice 0.91);
most of that is bone a given mask leaves out, which no separator can put back, but
within the given masks the layers err too (docs/training.md, session 20).
:func:`perturb_outlines` moves each outline by a smooth random amount so that a
generator can learn from masks like the node's, and :func:`layers_for_given_masks` says
what a layer should hold where its given mask has no bone of its own: the soft tissue,
as Eq. 1 asks (a layer alone must equal the image, which there is soft tissue) and as
every layer holds the soft tissue around its bone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

#: Correlation length (Gaussian sigma, px) of the outline displacement: a segmenter's
#: outline errors run along the bone for several pixels, they are not pixel noise.
OUTLINE_NOISE_SMOOTHNESS_PX = 8.0


def signed_distance(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Distance to the outline, positive inside: >= 1 on every mask pixel, <= -1 outside."""
    return ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)


def perturb_outlines(
    masks: NDArray[np.bool_],
    amplitude_px: float,
    rng: np.random.Generator,
    smoothness_px: float = OUTLINE_NOISE_SMOOTHNESS_PX,
) -> NDArray[np.bool_]:
    """Each mask of ``masks`` ``(n, H, W)`` with its outline moved in and out by a smooth
    field of standard deviation ``amplitude_px`` pixels, independently per mask.

    Amplitude 0 returns the masks unchanged. A mask the noise would empty is kept as it
    was (a bone does not vanish from the segmenter's output because its outline is off).
    """
    if amplitude_px < 0:
        raise ValueError(f"amplitude_px must be >= 0, got {amplitude_px}")
    masks = np.asarray(masks, dtype=bool)
    if amplitude_px == 0:
        return masks.copy()
    moved = []
    for mask in masks:
        field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), smoothness_px)
        field /= max(float(field.std()), 1e-12)
        candidate = signed_distance(mask) + amplitude_px * field > 0
        moved.append(candidate if candidate.any() else mask)
    return np.stack(moved)


def layers_for_given_masks(
    true_layers: NDArray[np.floating],
    true_masks: NDArray[np.bool_],
    given_masks: NDArray[np.bool_],
    background: NDArray[np.floating],
) -> NDArray[np.float32]:
    """The true layers ``(n, H, W)``, with the soft-tissue ``background`` ``(H, W)`` where a
    given mask holds no true bone of its own.

    A layer's true image is 0 outside its true mask only because it is masked there; a
    separator given a wider mask can at best put the soft tissue there (with one mask,
    Eq. 1 sets the layer to the image, which outside every bone is the background).
    """
    absent = np.asarray(given_masks, dtype=bool) & ~np.asarray(true_masks, dtype=bool)
    return np.where(absent, np.asarray(background)[None], true_layers).astype(np.float32)
