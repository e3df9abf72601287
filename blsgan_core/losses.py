"""Losses of the paper: Lb (BCE + Dice), Lr (RMSE), Eq. 2 and 3, pre-training Eq. 4 and 5.

Names used throughout (``n`` layers, ``(B, ., H, W)`` tensors):

``M``
    the bone masks ``(B, n, H, W)``; ``O`` the overlap region, pixels inside two or more
    masks; ``M_union`` pixels inside any mask.
``M'``
    the supervisor's output on a layer stack, ``D(L)``: ``2n`` logit maps (see
    :mod:`blsgan_core.networks.supervisor`: channels ``0..n-1`` "not an overlap",
    channels ``n..2n-1`` "real").
Targets of ``M'``
    for the generator (Eq. 2): ``[M, M]``, every bone pixel of every layer judged
    "not an overlap" and "real", so the generator is rewarded for layers in which the
    overlap leaves no trace. For the supervisor (Eq. 3/5): real layer stacks get ``[M, M]``;
    generated stacks get ``[M * (1 - O), 0]``, i.e. their overlap pixels are flagged as
    overlap and all their pixels as generated.
``R_cap, J_cap``
    ``R`` and ``J`` restricted to the overlap region ``O``: ``Lr(R_cap, J_cap)`` is the
    RMSE over ``O`` only. The overlap is ~1 % of the bone area (median 196 px against
    ~35 000 px), so ``Lr(R, J)`` over ``M_union`` alone is dominated by pixels that any
    copy of the input reproduces; the second term weighs the pixels where separation
    happens. Images without overlap contribute nothing to it.

Lb is BCE on logits plus soft Dice on ``sigmoid(logits)``, the sigmoid applied once (the
reference applied it to probabilities a second time, which flattens the Dice gradient).
RMSE is taken per image over the pixels of a region and averaged over images, so an
image's loss does not depend on how large its bone is.

Weights: the paper's a0 = b0 = a1 = b1 = 0.5 (the reference code used 0.7/0.3 and
0.3/0.3/0.4); ``g0`` weighs the ground-truth layer term of pre-training, 0.5 as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

_EPS = 1e-8


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 2-5 and the Dice smoothing constant."""

    a0: float = 0.5
    b0: float = 0.5
    a1: float = 0.5
    b1: float = 0.5
    g0: float = 0.5
    dice_smooth: float = 1.0

    def __post_init__(self) -> None:
        for name in ("a0", "b0", "a1", "b1", "g0"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"LossWeights.{name} must be a number >= 0, got {value!r}")
        if self.dice_smooth <= 0:
            raise ValueError(f"LossWeights.dice_smooth must be > 0, got {self.dice_smooth!r}")


@dataclass(frozen=True)
class LossTerms:
    """A loss to back-propagate and its named parts (detached) for logging."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


def overlap_region(masks: torch.Tensor) -> torch.Tensor:
    """``O``: pixels inside two or more of the ``n`` masks, ``(B, 1, H, W)``."""
    return (masks.sum(dim=1, keepdim=True) >= 2).to(masks.dtype)


def union_region(masks: torch.Tensor) -> torch.Tensor:
    """``M_union``: pixels inside any mask, ``(B, 1, H, W)``."""
    return masks.amax(dim=1, keepdim=True)


def generator_targets(masks: torch.Tensor) -> torch.Tensor:
    """Eq. 2's target for ``M'``: ``[M, M]``, no overlap trace and real everywhere."""
    return torch.cat([masks, masks], dim=1)


def supervisor_targets(masks: torch.Tensor, *, real: bool) -> torch.Tensor:
    """Eq. 3/5 targets: ``[M, M]`` for real stacks, ``[M * (1 - O), 0]`` for generated ones."""
    if real:
        return generator_targets(masks)
    return torch.cat([masks * (1 - overlap_region(masks)), torch.zeros_like(masks)], dim=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per image and channel on ``sigmoid(logits)``, averaged."""
    probabilities = torch.sigmoid(logits).flatten(2)
    target = target.to(probabilities.dtype).flatten(2)
    intersection = (probabilities * target).sum(-1)
    total = probabilities.sum(-1) + target.sum(-1)
    return (1 - (2 * intersection + smooth) / (total + smooth)).mean()


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Lb: binary cross-entropy on logits plus soft Dice on their probabilities."""
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape"
        )
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
    return bce + dice_loss(logits, target, smooth)


def masked_rmse(
    prediction: torch.Tensor, target: torch.Tensor, region: torch.Tensor
) -> torch.Tensor:
    """Lr: RMSE per image over ``region`` (broadcast to the images), averaged over images.

    Images whose region is empty are left out; if all are empty the loss is 0 (still
    attached to the graph, so a backward pass is harmless).
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
        )
    region = region.to(prediction.dtype).expand_as(prediction)
    squared = (region * (prediction - target) ** 2).flatten(1).sum(1)
    count = region.flatten(1).sum(1)
    present = count > 0
    if not bool(present.any()):
        return prediction.sum() * 0
    per_image = torch.sqrt(squared[present] / count[present] + _EPS)
    return per_image.mean()


def generator_loss(
    supervisor_logits: torch.Tensor,
    masks: torch.Tensor,
    reconstruction: torch.Tensor,
    image: torch.Tensor,
    weights: LossWeights | None = None,
) -> LossTerms:
    """Eq. 2 (generator and reconstructor): ``a0*Lb(M', M) + b0*(Lr(R, J) + Lr(R_cap, J_cap))``.

    ``supervisor_logits`` is ``D(L)`` on the generated layers; ``reconstruction`` is
    Eq. 1 of those layers with the reconstructor's k; ``image`` is the input ``J``.
    """
    weights = weights or LossWeights()
    adversarial = segmentation_loss(
        supervisor_logits, generator_targets(masks), weights.dice_smooth
    )
    whole = masked_rmse(reconstruction, image, union_region(masks))
    overlap = masked_rmse(reconstruction, image, overlap_region(masks))
    total = weights.a0 * adversarial + weights.b0 * (whole + overlap)
    return LossTerms(
        total,
        {
            "supervision": adversarial.detach(),
            "reconstruction": whole.detach(),
            "reconstruction_overlap": overlap.detach(),
        },
    )


def supervisor_loss(
    real_logits: torch.Tensor,
    real_masks: torch.Tensor,
    generated_logits: torch.Tensor,
    generated_masks: torch.Tensor,
    weights: LossWeights | None = None,
) -> LossTerms:
    """Eq. 3 (supervisor): ``a1*Lb(D(L_real), [M, M]) + b1*Lb(D(L), [M(1-O), 0])``.

    ``real_logits`` is D on real layer stacks (the ground-truth layers ``Lg`` of synthetic
    overlaps, or ``J * M_i`` of images without overlap); ``generated_logits`` is D on the
    generator's layers, computed from detached layers so only D learns from this loss.
    """
    weights = weights or LossWeights()
    real = segmentation_loss(
        real_logits, supervisor_targets(real_masks, real=True), weights.dice_smooth
    )
    generated = segmentation_loss(
        generated_logits, supervisor_targets(generated_masks, real=False), weights.dice_smooth
    )
    return LossTerms(
        weights.a1 * real + weights.b1 * generated,
        {"supervisor_real": real.detach(), "supervisor_generated": generated.detach()},
    )


def pretraining_generator_loss(
    supervisor_logits: torch.Tensor,
    masks: torch.Tensor,
    reconstruction: torch.Tensor,
    image: torch.Tensor,
    layers: torch.Tensor,
    true_layers: torch.Tensor,
    weights: LossWeights | None = None,
) -> LossTerms:
    """Eq. 4 (pre-training on synthetic overlaps): Eq. 2 plus ``g0 * Lr(L, Lg)``.

    ``Lr(L, Lg)`` is the RMSE between generated and ground-truth layers over each
    layer's own bone pixels, which only synthetic overlaps can provide.
    """
    weights = weights or LossWeights()
    base = generator_loss(supervisor_logits, masks, reconstruction, image, weights)
    truth = masked_rmse(layers, true_layers, masks)
    return LossTerms(
        base.total + weights.g0 * truth, {**base.parts, "ground_truth_layers": truth.detach()}
    )


def pretraining_supervisor_loss(
    true_layer_logits: torch.Tensor,
    generated_logits: torch.Tensor,
    masks: torch.Tensor,
    weights: LossWeights | None = None,
) -> LossTerms:
    """Eq. 5: Eq. 3 with the ground-truth layers ``Lg`` of the same images as the real stack."""
    return supervisor_loss(true_layer_logits, masks, generated_logits, masks, weights)
