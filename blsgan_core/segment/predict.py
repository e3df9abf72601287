"""Bone masks of joint crops: probabilities for both bones, in one batched pass."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from blsgan_core.harmonise import harmonise_batch
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
    return np.asarray(ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes))))


def masks_from_probabilities(
    probabilities: np.ndarray, threshold: float = 0.5, one_region: bool = True
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
    crops: np.ndarray, model: Segmenter, threshold: float = 0.5, one_region: bool = True
) -> np.ndarray:
    """Boolean masks ``(N, 2, H, W)`` (upper, lower) at ``threshold``: the node's masks.

    With ``one_region`` each bone keeps only its largest region, holes filled.
    """
    return masks_from_probabilities(segment(crops, model), threshold, one_region)
