"""Seam steps for generated layers (five; none is the paper's).

``poisson`` (:func:`blend_layers`), ``exchange`` (:func:`exchange_layers`),
``eq1-exchange`` (:func:`project_layers`, then the exchange), ``eq1-split`` (the
exchange's field found on the projected layers) and ``eq1-offset`` (that field's mean)
are the modes of :attr:`blsgan_core.model.BLSGANConfig.boundary_blend` besides ``off``;
the poisson blend is described first.

Why: the shipped generator leaves each layer, inside the overlap ``O = M_1 ∩ M_2``, offset
in brightness against the rest of its bone, with a hard edge along ``O``'s boundary (seam
ratio ~1.6 on held-out synthetic overlaps, layer PSNR there 27.7 dB against 30.8 dB with
the local mean removed: the low-frequency error dominates). The texture inside ``O`` is
right; its level is not. Outside ``O`` a layer is its bone in the input, which fixes the
level where ``O`` meets the rest of the bone.

What: for each layer ``L_i``, inside ``O`` the result ``u`` solves the Poisson equation
whose guidance is ``L_i``'s own gradient (:func:`blsgan_core.laplace.poisson_fill`), with

- Dirichlet values: ``L_i`` itself at the pixels just outside ``O`` that lie inside
  ``M_i`` (there the layer is the input's bone), the guidance across that edge taken from
  the steps beside it rather than the step (the seam) itself;
- zero normal derivative where ``O``'s boundary is ``M_i``'s own outline (the bone ends
  there, nothing to match) and at the image edge;
- a small screening term ``screening * (u - L_i)`` so that a part of ``O`` with no
  Dirichlet neighbour keeps ``L_i`` (its level is then undetermined by the boundary).

A constant offset of ``L_i`` inside ``O`` is thereby removed, a layer without a seam is
left as it is (up to the screening), and the texture (the gradient) is kept. Each layer
is blended on its own; the Eq. 1 reconstruction is recomputed from the blended layers by
the caller. It breaks Eq. 1 where the generator's seams do not cancel: on real
joints the reconstruction inside the overlap fell from 35 to 16 dB. ``exchange`` changes
the layers only in ways Eq. 1 cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.linalg import spsolve

from blsgan_core.laplace import poisson_fill
from blsgan_core.seam_modes import BLEND_MODES

#: Weight of the data term; its reach ``1 / sqrt(screening)`` (100 px) is longer than the
#: distance of any overlap pixel to the overlap's boundary in MCP joints, so it barely
#: pulls towards the seam where a Dirichlet boundary exists.
DEFAULT_SCREENING = 1e-4


def blend_layer(
    layer: NDArray[np.floating],
    image: NDArray[np.floating],
    mask: NDArray[np.bool_],
    overlap: NDArray[np.bool_],
    screening: float = DEFAULT_SCREENING,
) -> NDArray[np.float32]:
    """One layer (``(H, W)``) of the joint ``image``: the input inside ``mask`` outside
    ``overlap``, and inside it ``layer`` blended into that surround."""
    layer = np.asarray(layer, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    region = np.asarray(overlap, dtype=bool) & mask
    surround = mask & ~region
    composed = np.where(region, layer, np.where(surround, image, 0.0))
    if not region.any():
        return composed.astype(np.float32)
    blended = poisson_fill(
        composed, region, guidance=composed, dirichlet=surround, screening=screening
    )
    return np.clip(blended, 0.0, 1.0).astype(np.float32)


def blend_layers(
    layers: NDArray[np.floating],
    image: NDArray[np.floating],
    masks: NDArray[np.bool_],
    screening: float = DEFAULT_SCREENING,
) -> NDArray[np.float32]:
    """Blend every layer of one joint (``(n, H, W)``, masks the same; ``image`` ``(H, W)``)
    inside the overlap, the pixels covered by at least two masks."""
    layers = np.asarray(layers)
    masks = np.asarray(masks, dtype=bool)
    if layers.ndim != 3 or layers.shape != masks.shape:
        raise ValueError(
            f"layers and masks must both be (n, H, W), got {layers.shape} and {masks.shape}"
        )
    overlap = masks.sum(axis=0) >= 2
    return np.stack(
        [
            blend_layer(layer, image, mask, overlap, screening)
            for layer, mask in zip(layers, masks, strict=True)
        ]
    )


def blend_batch(
    layers: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    screening: float = DEFAULT_SCREENING,
) -> torch.Tensor:
    """:func:`blend_layers` for each joint of a batch (layers and masks ``(B, n, H, W)``,
    images ``(B, 1, H, W)``); a float32 CPU tensor."""

    def blend(joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], _k: float) -> Any:
        return blend_layers(joint, image, mask, screening)

    return _each_joint(blend, layers, images, masks, torch.ones(layers.shape[0]))


#: Lowest ``1 - L`` taken into the log domain: a layer at full brightness stays finite.
MIN_TRANSMITTANCE = 1e-3

_STEPS = ((0, 1), (1, 0), (0, -1), (-1, 0))


def _shifted(array: NDArray[Any], dy: int, dx: int, fill: object) -> NDArray[Any]:
    """``array`` read at ``(y + dy, x + dx)``; ``fill`` beyond the image edge."""
    out = np.full_like(array, fill)
    h, w = array.shape
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = array[
        max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def _edge_targets(
    log_layer: NDArray[np.float64], overlap: NDArray[np.bool_], own: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per overlap pixel: the sum and the count of the offsets that would make the layer
    continuous with its own bone just outside the overlap (``own``: the bone without the
    overlap), one per edge to such a pixel.

    The step expected across an edge is the mean of the steps beside it in the same
    direction (one inside the overlap, one outside), as in :func:`poisson_fill`.
    """
    total = np.zeros(log_layer.shape)
    count = np.zeros(log_layer.shape)
    for dy, dx in _STEPS:
        outside = _shifted(log_layer, dy, dx, 0.0)
        edge = overlap & _shifted(own, dy, dx, False)
        beyond_ok = _shifted(own, 2 * dy, 2 * dx, False)
        behind_ok = _shifted(overlap, -dy, -dx, False)
        steps = np.where(beyond_ok, _shifted(log_layer, 2 * dy, 2 * dx, 0.0) - outside, 0.0)
        steps = steps + np.where(behind_ok, log_layer - _shifted(log_layer, -dy, -dx, 0.0), 0.0)
        used = beyond_ok.astype(float) + behind_ok.astype(float)
        expected = np.divide(steps, used, out=np.zeros_like(steps), where=used > 0)
        total += np.where(edge, outside - expected - log_layer, 0.0)
        count += edge
    return total, count


def exchange_layers(
    layers: NDArray[np.floating],
    masks: NDArray[np.bool_],
    screening: float = DEFAULT_SCREENING,
    *,
    guide: NDArray[np.floating] | None = None,
    constant: bool = False,
    bias: float = 0.0,
) -> NDArray[np.float32]:
    """Two layers (``(2, H, W)``) with their seams traded off against each other inside
    the overlap, the Eq. 1 reconstruction unchanged.

    In the overlap Eq. 1 fixes only the product ``(1 - L_1)(1 - L_2)``: any field ``d``
    gives the same reconstruction with ``1 - L_1`` times ``exp(d)`` and ``1 - L_2`` times
    ``exp(-d)``. ``d`` is the smoothest field (least squares on its 4-neighbour
    differences, a small ``screening`` towards 0) that brings each layer level with its
    own bone where the overlap meets that bone outside the overlap: upper-layer offsets
    where the lower bone's outline crosses the upper bone, minus lower-layer offsets
    where the upper bone's outline crosses the lower bone. A generator that
    reconstructs the input makes the two offsets agree (one layer too bright by what the
    other is too dark), and then both seams go; where they disagree, ``d`` meets them
    halfway instead of changing the reconstruction (which :func:`blend_layers` does).

    ``guide`` (default: ``layers``): the layers whose offsets at the boundary set ``d``,
    which is then applied to ``layers``; ``eq1-split`` guides by the layers projected onto
    Eq. 1 (:func:`project_layers`), whose two offsets agree as the exchange needs.
    ``constant``: ``d`` replaced by its mean over the overlap (``eq1-offset``), a shift of
    brightness between the layers with no spatial structure of its own, plus ``bias``
    (:attr:`blsgan_core.model.BLSGANConfig.offset_bias`, the step's calibration).
    """
    layers = _two_layers(layers, masks)
    masks = np.asarray(masks, dtype=bool)
    overlap = masks[0] & masks[1]
    result = layers.astype(np.float32)
    if not overlap.any():
        return result
    d = _exchange_field(_two_layers(layers if guide is None else guide, masks), masks, screening)
    if constant:
        d = np.where(overlap, d[overlap].mean() + bias, 0.0)
    return exchange_by(layers, masks, d)


def exchange_by(
    layers: NDArray[np.floating], masks: NDArray[np.bool_], d: float | NDArray[np.floating]
) -> NDArray[np.float32]:
    """Two layers (``(2, H, W)``) with ``1 - L_1`` times ``exp(d)`` and ``1 - L_2`` times
    ``exp(-d)`` inside the overlap (``d`` a number or a ``(H, W)`` field), unchanged
    elsewhere: the exchange's move, which Eq. 1 cannot see."""
    layers = _two_layers(layers, masks)
    masks = np.asarray(masks, dtype=bool)
    overlap = masks[0] & masks[1]
    logs = np.log(np.clip(1.0 - layers, MIN_TRANSMITTANCE, 1.0))
    upper = 1.0 - np.exp(logs[0] + d)
    lower = 1.0 - np.exp(logs[1] - d)
    result = layers.astype(np.float32)
    result[0] = np.where(overlap, np.clip(upper, 0.0, 1.0), layers[0])
    result[1] = np.where(overlap, np.clip(lower, 0.0, 1.0), layers[1])
    return result


def _two_layers(layers: NDArray[np.floating], masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``layers`` as float64, checked to be two layers of the masks' shape."""
    checked = np.asarray(layers, dtype=np.float64)
    shape = np.shape(masks)
    if checked.shape[0] != 2 or checked.ndim != 3 or checked.shape != shape:
        raise ValueError(
            f"layers and masks must both be (2, H, W), got {checked.shape} and {shape}"
        )
    return checked


def _exchange_field(
    layers: NDArray[np.float64], masks: NDArray[np.bool_], screening: float
) -> NDArray[np.float64]:
    """The exchange's field ``d`` (0 outside the overlap) for two layers with an overlap."""
    overlap = masks[0] & masks[1]
    logs = np.log(np.clip(1.0 - layers, MIN_TRANSMITTANCE, 1.0))
    upper_sum, upper_count = _edge_targets(logs[0], overlap, masks[0] & ~masks[1])
    lower_sum, lower_count = _edge_targets(logs[1], overlap, masks[1] & ~masks[0])
    size = int(overlap.sum())
    index = np.full(overlap.shape, -1)
    index[overlap] = np.arange(size)
    rows, cols = [], []
    for dy, dx in _STEPS[:2]:
        neighbour = _shifted(index, dy, dx, -1)
        pair = overlap & (neighbour >= 0)
        rows.append(index[pair])
        cols.append(neighbour[pair])
    a, b = np.concatenate(rows), np.concatenate(cols)
    adjacency = sparse.coo_matrix((np.ones(a.size), (a, b)), shape=(size, size)).tocsr()
    adjacency = adjacency + adjacency.T
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    diagonal = degree + upper_count[overlap] + lower_count[overlap] + screening
    system = sparse.diags(diagonal) - adjacency
    d = np.zeros(overlap.shape)
    d[overlap] = spsolve(system.tocsc(), upper_sum[overlap] - lower_sum[overlap])
    return d


def project_layers(
    layers: NDArray[np.floating], image: NDArray[np.floating], masks: NDArray[np.bool_], k: float
) -> NDArray[np.float32]:
    """Two layers (``(2, H, W)``) made to compose back into ``image`` (``(H, W)``) by Eq. 1
    inside the overlap, pixel by pixel; outside it unchanged.

    Inside the overlap Eq. 1 is ``log(1 - J) + log k = log(1 - L_1) + log(1 - L_2)``. The
    residual of the generator's layers against it is shared equally between the two
    ``log(1 - L_i)``: a change Eq. 1 sees and the exchange cannot make, since the exchange
    only moves brightness from one layer to the other. Why: the shipped generator's layers
    miss Eq. 1 by a residual that varies from pixel to pixel, and the exchange, which
    levels each layer with its own bone at the overlap's boundary, only helps where Eq. 1
    holds (docs/training.md, session 17).
    """
    layers = _two_layers(layers, masks)
    masks = np.asarray(masks, dtype=bool)
    if not k > 0:
        raise ValueError(f"k is a transmittance and must be > 0, got {k}")
    overlap = masks[0] & masks[1]
    logs = np.log(np.clip(1.0 - layers, MIN_TRANSMITTANCE, 1.0))
    target = np.log(np.clip(1.0 - np.asarray(image, dtype=np.float64), MIN_TRANSMITTANCE, 1.0))
    residual = np.where(overlap, target + np.log(k) - logs[0] - logs[1], 0.0)
    projected = np.clip(1.0 - np.exp(logs + residual / 2), 0.0, 1.0)
    return np.where(overlap, projected, layers).astype(np.float32)


#: One joint's seam step: ``(layers (n, H, W), image (H, W), masks (n, H, W), k)`` -> layers.
JointStep = Callable[[NDArray[Any], NDArray[Any], NDArray[Any], float], Any]


def _blended(joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], k: float) -> Any:
    return blend_layers(joint, image, mask)


def _exchanged(joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], k: float) -> Any:
    return exchange_layers(joint, mask)


def _eq1_exchanged(joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], k: float) -> Any:
    return exchange_layers(project_layers(joint, image, mask, k), mask)


def _eq1_split(joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], k: float) -> Any:
    return exchange_layers(joint, mask, guide=project_layers(joint, image, mask, k))


def _eq1_offset(
    joint: NDArray[Any], image: NDArray[Any], mask: NDArray[Any], k: float, bias: float = 0.0
) -> Any:
    guide = project_layers(joint, image, mask, k)
    return exchange_layers(joint, mask, guide=guide, constant=True, bias=bias)


#: One joint's step per mode besides ``off``:
#: ``eq1-exchange`` exchanges the projected layers; ``eq1-split`` exchanges the
#: generator's own by the field of their projection, keeping their reconstruction;
#: ``eq1-offset`` the same with that field's mean over the overlap.
_JOINT_STEPS: dict[str, JointStep] = {
    "poisson": _blended,
    "exchange": _exchanged,
    "eq1-exchange": _eq1_exchanged,
    "eq1-split": _eq1_split,
    "eq1-offset": _eq1_offset,
}


def _each_joint(
    step: JointStep,
    layers: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    k: torch.Tensor,
) -> torch.Tensor:
    """``step`` on each joint of a batch (layers and masks ``(B, n, H, W)``, images
    ``(B, 1, H, W)``, k ``(B,)``) in NumPy; a float32 CPU tensor."""
    masks_np = masks.detach().cpu().numpy() > 0.5
    images_np = images.detach().cpu().float().numpy()[:, 0]
    layers_np = layers.detach().cpu().float().numpy()
    k_np = k.detach().cpu().float().numpy().reshape(-1)
    joints = [
        step(joint, image, mask, float(kk))
        for joint, image, mask, kk in zip(layers_np, images_np, masks_np, k_np, strict=True)
    ]
    return torch.from_numpy(np.stack(joints)) if joints else layers.detach().cpu().float()


def remove_seams(
    mode: str,
    layers: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    k: torch.Tensor,
    offset_bias: float = 0.0,
) -> torch.Tensor:
    """The layers of a batch after the seam step ``mode`` (one of :data:`BLEND_MODES`);
    ``k`` ``(B,)`` is the model's, which the Eq. 1 steps need; ``offset_bias`` calibrates
    ``eq1-offset`` (:attr:`blsgan_core.model.BLSGANConfig.offset_bias`)."""
    if mode not in BLEND_MODES:
        raise ValueError(f"boundary_blend must be one of {BLEND_MODES}, got {mode!r}")
    if mode == "off":
        return layers
    if offset_bias and mode != "eq1-offset":
        raise ValueError(f"offset_bias calibrates the eq1-offset step, not {mode!r}")
    step = partial(_eq1_offset, bias=offset_bias) if offset_bias else _JOINT_STEPS[mode]
    return _each_joint(step, layers, images, masks, k)
