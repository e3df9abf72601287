"""One optimisation step of each phase: generator + reconstructor, then supervisor.

Phase 1 (pre-training, synthetic overlaps only): Eq. 4 for G and R, Eq. 5 for D, with
the ground-truth layers ``Lg`` as D's real stacks. Phase 2 (synthetic + real joints):
Eq. 2 for G and R on every joint; Eq. 3 for D, whose real stacks are the ``Lg`` of the
synthetic joints in the batch (real joints have no true layers). ``phase2_ground_truth``
adds Eq. 4's ground-truth term for the synthetic joints of phase 2 (off in the presets:
the paper uses Eq. 2 there).

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
    """A training batch on the training device (see :class:`trainer.datasets.JointDataset`)."""

    image: torch.Tensor
    masks: torch.Tensor
    true_layers: torch.Tensor
    has_truth: torch.Tensor

    @classmethod
    def from_loader(cls, data: dict[str, torch.Tensor], device: torch.device) -> Batch:
        """Move the loader's dict of tensors to ``device``."""
        return cls(
            image=data["image"].to(device, non_blocking=True),
            masks=data["masks"].to(device, non_blocking=True),
            true_layers=data["true_layers"].to(device, non_blocking=True),
            has_truth=data["has_truth"].to(device, non_blocking=True),
        )

    @property
    def size(self) -> int:
        """Number of joints."""
        return int(self.image.shape[0])


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
            k = networks.correction(batch.image)
            image = batch.image.to(layers.dtype)
            reconstruction = reconstruct(layers, batch.masks.to(layers.dtype), k)
            logits = supervisor(layers)
            if phase == 1:
                terms = losses.pretraining_generator_loss(
                    logits, batch.masks, reconstruction, image, layers,
                    batch.true_layers, settings.weights,
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
                        layers[truth], batch.true_layers[truth], batch.masks[truth]
                    )
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
    """One Adam step of D: Eq. 5 in phase 1, Eq. 3 in phase 2."""
    truth = batch.has_truth
    with settings.autocast:
        # One forward pass over the real stacks and the generated ones together.
        real_layers = batch.true_layers[truth]
        logits = supervisor_of(networks)(torch.cat([real_layers.to(layers.dtype), layers]))
        real_logits, generated_logits = logits[: len(real_layers)], logits[len(real_layers) :]
        if phase == 1:
            terms = losses.pretraining_supervisor_loss(
                real_logits, generated_logits, batch.masks, settings.weights
            )
            total = terms.total
        elif len(real_layers):
            terms = losses.supervisor_loss(
                real_logits, batch.masks[truth], generated_logits, batch.masks, settings.weights
            )
            total = terms.total
        else:
            # A batch of real joints only has no real stack: Eq. 3's generated term alone.
            generated = losses.segmentation_loss(
                generated_logits,
                losses.supervisor_targets(batch.masks, real=False),
                settings.weights.dice_smooth,
            )
            total = settings.weights.b1 * generated
            terms = losses.LossTerms(total, {"supervisor_generated": generated.detach()})
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    logged = {"loss_d": float(total.detach())}
    logged.update({name: float(value) for name, value in terms.parts.items()})
    return logged


def training_step(
    networks: BLSGANModel,
    batch: Batch,
    phase: int,
    settings: StepSettings,
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, float]:
    """G+R update then D update on one batch; the union of their logged losses."""
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2, got {phase!r}")
    if phase == 1 and not bool(batch.has_truth.all()):
        raise ValueError("phase 1 needs true layers for every joint (synthetic overlaps only)")
    layers, logged = generator_update(networks, batch, phase, settings, optimizers["generator"])
    logged.update(
        supervisor_update(networks, batch, layers, phase, settings, optimizers["supervisor"])
    )
    return logged
