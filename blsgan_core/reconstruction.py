"""Eq. 1 of the paper: compose layer images back into the radiograph they came from.

Convention (the paper's): grey values are "bright = absorbing", so ``1 - L`` is the
fraction of the beam a layer lets through, and ``k`` is the TRANSMITTANCE of the soft
tissue in the overlap, in (0, 1]. Both layer images already contain the soft tissue
above and below their bone; where two layers overlap that soft tissue would be counted
twice, so Eq. 1 divides it out once::

    R = (1 - k * prod_i(1 - (1 - (1 - L_i) / k) * M_i)) * M_union

With binary masks: both masks set gives ``R = 1 - (1 - L1)(1 - L2) / k``; one mask gives
``R = L_i``; no mask gives ``R = 0``.

The published code writes the same equation with the soft-tissue *background value*
``b`` (grey, bright = absorbing) as ``1 - (1 - L1)(1 - L2) / (1 - b)``, i.e. ``k = 1 - b``;
:func:`transmittance_from_background` converts. The no-correction ablation (the paper's
"without correction parameter") is ``k = 1``: ``correction=False``.
"""

from __future__ import annotations

import torch

KLike = torch.Tensor | float


def transmittance_from_background(background: torch.Tensor | float) -> torch.Tensor | float:
    """``k = 1 - b``: the soft-tissue transmittance from its grey value (published code's ``b``)."""
    return 1 - background


def background_from_transmittance(k: torch.Tensor | float) -> torch.Tensor | float:
    """``b = 1 - k``: the inverse of :func:`transmittance_from_background`."""
    return 1 - k


def _k_as_batch(k: KLike, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Bring ``k`` (scalar, ``(B,)`` or ``(B, 1, 1, 1)``) to shape ``(B, 1, 1, 1)``."""
    if isinstance(k, bool) or not isinstance(k, (int, float, torch.Tensor)):
        raise TypeError(f"k must be a float or a tensor, got {type(k).__name__}")
    tensor = torch.as_tensor(k, dtype=like.dtype, device=like.device)
    if tensor.dim() == 0:
        tensor = tensor.expand(batch)
    elif tensor.numel() == batch and tensor.shape[0] == batch:
        tensor = tensor.reshape(batch)
    else:
        raise ValueError(
            f"k must be a scalar or hold one value per image ({batch}), got shape "
            f"{tuple(tensor.shape)}"
        )
    if not torch.all(tensor > 0):
        raise ValueError("k is a transmittance and must be > 0 everywhere")
    return tensor.view(batch, 1, 1, 1)


def reconstruct(
    layers: torch.Tensor,
    masks: torch.Tensor,
    k: KLike = 1.0,
    *,
    correction: bool = True,
) -> torch.Tensor:
    """Eq. 1: the radiograph ``R`` (``(B, 1, H, W)``) that ``n`` layers compose into.

    Parameters
    ----------
    layers, masks
        ``(B, n, H, W)`` tensors; ``layers`` in [0, 1], ``masks`` in {0, 1}.
    k
        Soft-tissue transmittance, a scalar or one value per image (``(B,)``); > 0.
    correction
        ``False`` is the no-correction ablation: ``k`` is ignored and fixed to 1.
    """
    if layers.dim() != 4 or layers.shape != masks.shape:
        raise ValueError(
            f"layers and masks must both be (B, n, H, W) of the same shape, got "
            f"{tuple(layers.shape)} and {tuple(masks.shape)}"
        )
    k_batch = _k_as_batch(k if correction else 1.0, layers.shape[0], layers)
    masks = masks.to(layers.dtype)
    per_layer = 1 - (1 - (1 - layers) / k_batch) * masks
    union = masks.amax(dim=1, keepdim=True)
    return (1 - k_batch * per_layer.prod(dim=1, keepdim=True)) * union
