"""Bone masks of joint crops: probabilities for both bones, in one batched pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from blsgan_core.harmonise import harmonise_batch
from blsgan_core.mask_thresholds import (
    OUTLINE_THRESHOLD,
    SEPARATION_CONTACT_PX,
    SEPARATION_THRESHOLD,
)
from blsgan_core.segment.model import Segmenter


def prepare(crops: np.ndarray) -> torch.Tensor:
    """Crops harmonised (``blsgan_core.harmonise``) as a ``(N, 1, H, W)`` tensor.

    Crops already harmonised (the worker harmonises once for both networks) come out
    unchanged up to float rounding: the map of reference statistics onto themselves.
    """
    array = np.asarray(crops)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"crops must be (N, H, W) or (H, W), got shape {array.shape}")
    return torch.from_numpy(harmonise_batch(array))[:, None]


def segment(crops: np.ndarray, model: Segmenter) -> np.ndarray:
    """Probabilities ``(N, 2, H, W)``: channel 0 upper bone, 1 lower bone (may overlap).

    ``crops`` are joint crops with the finger pointing up, ``(N, H, W)`` or one
    ``(H, W)``, bright = bone; H = W = the model's crop size.
    """
    batch = prepare(crops)
    size = model.config.crop_size
    if batch.shape[-2:] != (size, size):
        raise ValueError(f"crops must be {size}x{size}, got {tuple(batch.shape[-2:])}")
    with torch.inference_mode():
        bones, _ = model.probabilities(model(batch))
        return bones.numpy()


def fill_holes(region: np.ndarray) -> np.ndarray:
    """``region`` (2-D, boolean) with every hole filled: the same result as
    ``scipy.ndimage.binary_fill_holes``, whose background is 4-connected.

    Why not that function: it grows the outside from the image border one dilation at a
    time, about 1.9 ms per 256-px mask; labelling the background once inside the region's
    bounding box takes 0.3 ms (docs/training.md, session 23), and the node fills twenty
    masks per hand.
    """
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    filled = region.copy()
    if not rows.size:
        return filled
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    background, _ = ndimage.label(~region[box])
    edges = np.concatenate((background[0], background[-1], background[:, 0], background[:, -1]))
    filled[box] = ~np.isin(background, edges[edges > 0])
    return filled


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a 2-D mask, its holes filled.

    A bone is one solid region: specks elsewhere in the crop (a neighbouring finger, a
    sesamoid) and holes in a bone are thresholding noise, not anatomy.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return fill_holes(labels == 1 + int(np.argmax(sizes)))


def masks_from_probabilities(
    probabilities: np.ndarray, threshold: float = OUTLINE_THRESHOLD, one_region: bool = True
) -> np.ndarray:
    """Boolean masks ``(N, 2, H, W)`` from ``segment``'s probabilities at ``threshold``.

    With ``one_region`` each bone keeps only its largest region, holes filled. Kept apart
    from ``segment_masks`` so that an evaluation can try several thresholds on one pass
    of the network and still apply exactly the node's rule.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if probabilities.ndim != 4 or probabilities.shape[1] != 2:
        raise ValueError(f"probabilities must be (N, 2, H, W), got shape {probabilities.shape}")
    masks = probabilities >= threshold
    if one_region:
        for index in np.ndindex(masks.shape[:2]):
            masks[index] = largest_component(masks[index])
    return masks


def segment_masks(
    crops: np.ndarray,
    model: Segmenter,
    threshold: float = OUTLINE_THRESHOLD,
    one_region: bool = True,
) -> np.ndarray:
    """Boolean masks ``(N, 2, H, W)`` (upper, lower) at ``threshold``: the node's outlines.

    With ``one_region`` each bone keeps only its largest region, holes filled.
    """
    return masks_from_probabilities(segment(crops, model), threshold, one_region)


def separation_masks(
    probabilities: np.ndarray,
    outlines: np.ndarray,
    threshold: float = SEPARATION_THRESHOLD,
    contact_px: int = SEPARATION_CONTACT_PX,
) -> np.ndarray:
    """The masks BLS-GAN gets ``(N, 2, H, W)``: each bone's outline, widened to ``threshold``
    within ``contact_px`` (4-connected steps) of the other bone's outline.

    ``outlines`` are the masks at :data:`OUTLINE_THRESHOLD` of the same ``probabilities``.
    Never narrower than the outlines; a threshold of 0.5 or more gives the outlines. Each
    bone stays one region, as its outline is: widened pixels that do not touch the outline
    (an island next to the other bone, across a joint space) are left out, and a bone
    without an outline gets no mask.
    """
    if contact_px < 0:
        raise ValueError(f"contact_px must be >= 0, got {contact_px}")
    if outlines.shape != probabilities.shape:
        raise ValueError(
            f"outlines {outlines.shape} and probabilities {probabilities.shape} must match"
        )
    # One connected-region pass, on the result: it keeps the widening that touches the outline.
    wider = probabilities >= threshold
    step = ndimage.generate_binary_structure(2, 1)
    result = outlines.copy()
    for image in range(outlines.shape[0]):
        for bone in range(2):
            outline, other = outlines[image, bone], outlines[image, 1 - bone]
            if not outline.any():
                continue
            near = ndimage.binary_dilation(other, step, contact_px) if contact_px else other
            result[image, bone] = largest_component(outline | (wider[image, bone] & near))
    return result


@dataclass(frozen=True)
class NodeMasks:
    """One batch's masks ``(N, 2, H, W)`` as the node uses them, from one network pass."""

    outlines: np.ndarray
    """At :data:`OUTLINE_THRESHOLD`: what the node shows and measures."""
    for_separation: np.ndarray
    """What BLS-GAN gets (:func:`separation_masks`)."""


def node_masks(
    crops: np.ndarray,
    model: Segmenter,
    separation_threshold: float = SEPARATION_THRESHOLD,
    contact_px: int = SEPARATION_CONTACT_PX,
) -> NodeMasks:
    """The outlines and the separator's masks of ``crops`` (each bone one region)."""
    probabilities = segment(crops, model)
    outlines = masks_from_probabilities(probabilities, OUTLINE_THRESHOLD)
    return NodeMasks(
        outlines, separation_masks(probabilities, outlines, separation_threshold, contact_px)
    )
