"""Inference API: separate the bones of a batch of joint crops into layer images.

``separate`` is what the worker and the CLI call: arrays in (NumPy or torch, any device),
CPU tensors out. It runs the model in eval mode under ``torch.inference_mode`` on the
model's device (or ``device``), all joints of a radiograph in one forward pass (chunked by
``batch_size`` if given). Eval mode has no randomness (no dropout, GroupNorm instead of
batch statistics), so the same input gives the same output on the same device.

If the model's config asks for it (``mask_margin_px``, a departure from the paper), the
given masks are widened before the model sees them
(:func:`blsgan_core.mask_margin.widen_masks`); the result carries the masks used. If it
asks for it (``boundary_blend``, likewise a departure), the layers are blended across the
overlap boundary on the CPU afterwards (:mod:`blsgan_core.seams`) and Eq. 1 is
recomputed from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from blsgan_core.mask_margin import widen_masks
from blsgan_core.model import BLSGANModel
from blsgan_core.reconstruction import reconstruct
from blsgan_core.seams import remove_seams

ArrayLike = torch.Tensor | NDArray[np.generic]


@dataclass(frozen=True)
class SeparationResult:
    """Per joint: ``layers`` ``(B, n, H, W)`` (upper first), ``k`` ``(B,)``,
    ``reconstruction`` ``(B, 1, H, W)``; float32 CPU tensors. ``masks`` ``(B, n, H, W)``
    are those the layers were separated with where they differ from the given ones (a
    model's ``mask_margin_px``); ``None``: the given masks."""

    layers: torch.Tensor
    k: torch.Tensor
    reconstruction: torch.Tensor
    masks: torch.Tensor | None = None


def _as_images(images: ArrayLike) -> torch.Tensor:
    tensor = torch.as_tensor(images)
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4 or tensor.shape[1] != 1:
        raise ValueError(f"images must be (B, H, W) or (B, 1, H, W), got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"images must be floats in [0, 1], got dtype {tensor.dtype}")
    tensor = tensor.float()
    if tensor.numel() and (tensor.min() < 0 or tensor.max() > 1):
        raise ValueError("images must lie in [0, 1] (grey values, bright = bone)")
    return tensor


def _as_masks(masks: ArrayLike, images: torch.Tensor, n_layers: int) -> torch.Tensor:
    tensor = torch.as_tensor(masks)
    expected = (images.shape[0], n_layers, *images.shape[2:])
    if tuple(tensor.shape) != expected:
        raise ValueError(f"masks must be {expected} (upper first), got {tuple(tensor.shape)}")
    if tensor.dtype != torch.bool and not torch.all((tensor == 0) | (tensor == 1)):
        raise ValueError("masks must be binary (0/1 or booleans)")
    return tensor.float()


def separate(
    images: ArrayLike,
    masks: ArrayLike,
    model: BLSGANModel,
    *,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    boundary_blend: str | None = None,
) -> SeparationResult:
    """Layer images, k and the Eq. 1 reconstruction of each joint.

    Parameters
    ----------
    images
        ``(B, H, W)`` or ``(B, 1, H, W)`` floats in [0, 1].
    masks
        ``(B, n, H, W)`` binary bone masks, upper bone first.
    model
        A :class:`~blsgan_core.model.BLSGANModel`; put in eval mode for the call and
        restored to its previous mode afterwards.
    device
        Where to run; defaults to the device of the model's parameters. The model is
        moved there if needed.
    batch_size
        Joints per forward pass; all at once if ``None``.
    boundary_blend
        The seam step (:data:`blsgan_core.seam_modes.BLEND_MODES`); ``None`` follows the
        model's config. Set it to measure one model with and without. ``eq1-offset``
        takes the config's calibration (``offset_bias``) whichever way it is chosen.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    image_tensor = _as_images(images)
    margin = model.config.mask_margin_px
    mask_tensor = widen_masks(_as_masks(masks, image_tensor, model.config.n_layers), margin)
    target = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(target)
    was_training = model.training
    model.eval()
    outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    step = batch_size or max(image_tensor.shape[0], 1)
    try:
        with torch.inference_mode():
            for start in range(0, image_tensor.shape[0], step):
                chunk = slice(start, start + step)
                layers, k, recon = model(
                    image_tensor[chunk].to(target), mask_tensor[chunk].to(target)
                )
                outputs.append((layers.float().cpu(), k.float().cpu(), recon.float().cpu()))
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("no images given")
    layers, k, recon = (torch.cat(parts) for parts in zip(*outputs, strict=True))
    mode = model.config.boundary_blend if boundary_blend is None else boundary_blend
    if mode != "off":
        bias = model.config.offset_bias if mode == "eq1-offset" else 0.0
        layers = remove_seams(mode, layers, image_tensor, mask_tensor, k, offset_bias=bias)
        recon = reconstruct(layers, mask_tensor, k)
    return SeparationResult(layers, k, recon, mask_tensor if margin else None)
