"""One optimisation step of each phase: generator + reconstructor, then supervisor.

Phase 1 (pre-training, synthetic overlaps only): Eq. 4 for G and R, Eq. 5 for D (real
sample ``J * M``, fake sample ``G(J, M)``, and the true layers ``Lg`` as a second real
sample). Phase 2 (synthetic + real joints): Eq. 2 for G and R and Eq. 3 for D on every
joint. ``phase2_ground_truth`` (a departure, off by default) adds Eq. 4's and Eq. 5's
true-layer terms for the synthetic joints of phase 2; ``LossWeights.k_truth`` (a departure,
0 by default) adds ``Lr(k, k_true)`` for every synthetic joint, ``LossWeights.seam``
(likewise) the seam loss wherever the true layers are used, ``LossWeights.soft_tissue_rim``
(likewise) the true-layer error where a given mask holds no bone of its own, and
``LossWeights.seam_prior`` the seam prior on phase 2's joints without true layers.

The two updates alternate as in any GAN: G and R step against the current D, with D's
parameters frozen for that backward pass (no wasted weight gradients); then D steps on
the detached layers. Both run under the same autocast context, a no-op unless AMP is on.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from blsgan_core import losses
from blsgan_core.losses import LossWeights
from blsgan_core.model import BLSGANModel
from blsgan_core.networks.supervisor import Supervisor
from blsgan_core.reconstruction import reconstruct


@dataclass(frozen=True)
class Batch:
    """A training batch on the training device (see :class:`trainer.datasets.JointDataset`).

    ``masks`` are what the networks are given; ``true_masks`` those of ``true_layers``
    (``None``: the same as ``masks``).
    """

    image: torch.Tensor
    masks: torch.Tensor
    true_layers: torch.Tensor
    has_truth: torch.Tensor
    true_k: torch.Tensor
    true_masks: torch.Tensor | None = None

    @classmethod
    def from_loader(cls, data: dict[str, torch.Tensor], device: torch.device) -> Batch:
        """Move the loader's dict of tensors to ``device``."""
        return cls(
            image=data["image"].to(device, non_blocking=True),
            masks=data["masks"].to(device, non_blocking=True),
            true_layers=data["true_layers"].to(device, non_blocking=True),
            has_truth=data["has_truth"].to(device, non_blocking=True),
            true_k=data["k"].to(device, non_blocking=True),
            true_masks=data["true_masks"].to(device, non_blocking=True),
        )

    @property
    def size(self) -> int:
        """Number of joints."""
        return int(self.image.shape[0])

    @property
    def truth_masks(self) -> torch.Tensor:
        """The masks of the true layers."""
        return self.masks if self.true_masks is None else self.true_masks

    @property
    def truth_region(self) -> torch.Tensor:
        """Where a layer is compared with its true layer: inside its given or its true
        mask, so bone put outside the true outline counts as error as well as bone lost
        outside the given one."""
        return torch.maximum(self.masks, self.truth_masks)

    @property
    def rim(self) -> torch.Tensor:
        """Where a given mask holds no true bone of its own (a moved or widened outline):
        there the true layer is the soft tissue."""
        return self.masks * (1 - self.truth_masks)


def supervisor_of(model: BLSGANModel) -> Supervisor:
    """The model's supervisor; training needs a model built ``with_supervisor=True``."""
    if model.supervisor is None:
        raise ValueError("training needs the model's supervisor (with_supervisor=True)")
    return model.supervisor


@dataclass(frozen=True)
class StepSettings:
    """What a step needs besides the networks: weights, phase switches, autocast."""

    weights: LossWeights
    phase2_ground_truth: bool
    autocast: AbstractContextManager[object]
    supervisor_steps: int = 1


def generator_update(
    networks: BLSGANModel,
    batch: Batch,
    phase: int,
    settings: StepSettings,
    optimizer: torch.optim.Optimizer,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One Adam step of G and R; returns the detached layers and the logged losses."""
    supervisor = supervisor_of(networks)
    supervisor.requires_grad_(False)
    try:
        with settings.autocast:
            layers = networks.generator(batch.image, batch.masks)
            k = networks.correction(batch.image, batch.masks)
            image = batch.image.to(layers.dtype)
            reconstruction = reconstruct(layers, batch.masks.to(layers.dtype), k)
            logits = supervisor(layers)
            if phase == 1:
                terms = losses.pretraining_generator_loss(
                    logits, batch.masks, reconstruction, image, layers,
                    batch.true_layers, settings.weights, truth_region=batch.truth_region,
                )  # fmt: skip
                total = terms.total
            else:
                terms = losses.generator_loss(
                    logits, batch.masks, reconstruction, image, settings.weights
                )
                total = terms.total
                truth = batch.has_truth
                if settings.phase2_ground_truth and bool(truth.any()):
                    total = total + settings.weights.g0 * losses.masked_rmse(
                        layers[truth], batch.true_layers[truth], batch.truth_region[truth]
                    )
            truth = batch.has_truth if phase == 2 else torch.ones_like(batch.has_truth)
            truth_terms = phase == 1 or settings.phase2_ground_truth
            if settings.weights.seam > 0 and truth_terms:
                seam = losses.seam_loss(
                    layers[truth], batch.true_layers[truth], batch.truth_masks[truth]
                )
                total = total + settings.weights.seam * seam
                terms.parts["seam"] = seam.detach()
            if settings.weights.soft_tissue_rim > 0 and truth_terms:
                rim = losses.masked_rmse(layers[truth], batch.true_layers[truth], batch.rim[truth])
                total = total + settings.weights.soft_tissue_rim * rim
                terms.parts["soft_tissue_rim"] = rim.detach()
            unknown = ~batch.has_truth
            if settings.weights.seam_prior > 0 and phase == 2 and bool(unknown.any()):
                prior = losses.seam_prior_loss(layers[unknown], batch.masks[unknown])
                total = total + settings.weights.seam_prior * prior
                terms.parts["seam_prior"] = prior.detach()
            if settings.weights.k_truth > 0:
                k_error = losses.k_truth_loss(k, batch.true_k)
                total = total + settings.weights.k_truth * k_error
                terms.parts["k_truth"] = k_error.detach()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    finally:
        supervisor.requires_grad_(True)
    logged = {"loss_g": float(total.detach()), "k_mean": float(k.detach().float().mean())}
    logged.update({name: float(value) for name, value in terms.parts.items()})
    return layers.detach(), logged


def supervisor_update(
    networks: BLSGANModel,
    batch: Batch,
    layers: torch.Tensor,
    phase: int,
    settings: StepSettings,
    optimizer: torch.optim.Optimizer,
) -> dict[str, float]:
    """One Adam step of D: Eq. 5 in phase 1, Eq. 3 in phase 2 (+ Eq. 5's term if asked)."""
    truth = batch.has_truth
    if phase == 2 and not settings.phase2_ground_truth:
        truth = torch.zeros_like(truth)
    with settings.autocast:
        image = batch.image.to(layers.dtype)
        # D judges the true layers inside their own bones (with moved outlines the truth
        # also holds soft tissue where a given mask has no bone of its own).
        true_layers = (batch.true_layers * batch.truth_masks)[truth].to(layers.dtype)
        # One forward pass over the real sample J * M, the generated layers and any Lg.
        logits = supervisor_of(networks)(
            torch.cat([losses.real_sample(image, batch.masks), layers, true_layers])
        )
        input_logits, generated_logits = logits[: batch.size], logits[batch.size : 2 * batch.size]
        if len(true_layers):
            terms = losses.pretraining_supervisor_loss(
                input_logits,
                generated_logits,
                logits[2 * batch.size :],
                batch.masks,
                settings.weights,
                true_layer_masks=batch.truth_masks[truth],
            )
        else:
            terms = losses.supervisor_loss(
                input_logits, generated_logits, batch.masks, settings.weights
            )
    optimizer.zero_grad(set_to_none=True)
    terms.total.backward()
    optimizer.step()
    logged = {"loss_d": float(terms.total.detach())}
    logged.update({name: float(value) for name, value in terms.parts.items()})
    return logged


def training_step(
    networks: BLSGANModel,
    batch: Batch,
    phase: int,
    settings: StepSettings,
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, float]:
    """G+R update then ``settings.supervisor_steps`` D updates on one batch; the union of
    their logged losses (D's from its last update)."""
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2, got {phase!r}")
    if phase == 1 and not bool(batch.has_truth.all()):
        raise ValueError("phase 1 needs true layers for every joint (synthetic overlaps only)")
    layers, logged = generator_update(networks, batch, phase, settings, optimizers["generator"])
    judged: dict[str, float] = {}
    for _ in range(settings.supervisor_steps):
        judged = supervisor_update(
            networks, batch, layers, phase, settings, optimizers["supervisor"]
        )
    logged.update(judged)
    return logged
