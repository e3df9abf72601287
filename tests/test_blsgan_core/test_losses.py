"""Losses on hand-computed cases, and gradients through all three networks."""

import math

import pytest
import torch

from blsgan_core.losses import (
    LossWeights,
    dice_loss,
    generator_loss,
    masked_rmse,
    overlap_region,
    pretraining_generator_loss,
    pretraining_supervisor_loss,
    segmentation_loss,
    supervisor_loss,
    supervisor_targets,
)
from blsgan_core.networks.generator import Generator, GeneratorConfig
from blsgan_core.networks.reconstructor import Reconstructor, ReconstructorConfig
from blsgan_core.networks.supervisor import Supervisor, SupervisorConfig
from blsgan_core.reconstruction import reconstruct

LN2 = math.log(2)


def _strip_masks() -> torch.Tensor:
    """1x4 strip: pixel 0 in no mask, 1 upper only, 2 both (the overlap), 3 lower only."""
    return torch.tensor([[[[0.0, 1, 1, 0]], [[0.0, 0, 1, 1]]]])


def test_segmentation_loss_on_a_hand_computed_case() -> None:
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, 0.0]]]])
    # BCE of p = 0.5 is ln 2; Dice: 1 - (2 * 0.5 + 1) / (1 + 1 + 1) = 1/3.
    assert segmentation_loss(logits, target).item() == pytest.approx(LN2 + 1 / 3)


def test_dice_applies_the_sigmoid_exactly_once() -> None:
    target = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])
    logits = (target * 2 - 1) * 20
    assert dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert segmentation_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)


def test_masked_rmse_per_image_and_empty_regions() -> None:
    prediction = torch.tensor([[[[1.0, 2.0, 3.0]]], [[[5.0, 5.0, 5.0]]]])
    target = torch.zeros_like(prediction)
    region = torch.tensor([[[[1.0, 1.0, 0.0]]], [[[0.0, 0.0, 0.0]]]])
    assert masked_rmse(prediction, target, region).item() == pytest.approx(math.sqrt(2.5))
    prediction.requires_grad_(True)
    empty = masked_rmse(prediction, target, torch.zeros_like(region))
    empty.backward()
    assert empty.item() == 0


def test_overlap_and_supervisor_targets() -> None:
    masks = _strip_masks()
    assert overlap_region(masks).flatten().tolist() == [0, 0, 1, 0]
    real = supervisor_targets(masks, real=True)
    assert torch.equal(real, torch.cat([masks, masks], dim=1))
    generated = supervisor_targets(masks, real=False)[0, :, 0]
    assert generated.tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_eq2_on_a_hand_computed_case() -> None:
    masks = _strip_masks()
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    reconstruction = (image + 0.1) * masks.amax(1, keepdim=True)
    # D logits 0: BCE = ln 2; each target channel [M1, M2, M1, M2] sums to 2 and the
    # probabilities to 2: Dice = 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4.
    terms = generator_loss(torch.zeros(1, 4, 1, 4), masks, reconstruction, image)
    assert terms.parts["supervision"].item() == pytest.approx(LN2 + 0.4)
    assert terms.parts["reconstruction"].item() == pytest.approx(0.1, abs=1e-5)
    assert terms.parts["reconstruction_overlap"].item() == pytest.approx(0.1, abs=1e-5)
    assert terms.total.item() == pytest.approx(0.5 * (LN2 + 0.4) + 0.5 * 0.2, abs=1e-5)
    weighted = generator_loss(
        torch.zeros(1, 4, 1, 4), masks, reconstruction, image, LossWeights(a0=1.0, b0=0.0)
    )
    assert weighted.total.item() == pytest.approx(LN2 + 0.4)


def test_eq3_and_eq5_on_a_hand_computed_case() -> None:
    masks = _strip_masks()
    zeros = torch.zeros(1, 4, 1, 4)
    # Real: as in Eq. 2, ln 2 + 0.4. Generated: targets sum to 1, 1, 0, 0 against
    # probabilities summing to 2: Dice 1 - 2/4 = 0.5 twice, 1 - 1/3 twice -> mean 7/12.
    terms = supervisor_loss(zeros, masks, zeros, masks)
    assert terms.parts["supervisor_real"].item() == pytest.approx(LN2 + 0.4)
    assert terms.parts["supervisor_generated"].item() == pytest.approx(LN2 + 7 / 12)
    assert terms.total.item() == pytest.approx(0.5 * (LN2 + 0.4) + 0.5 * (LN2 + 7 / 12))
    assert torch.equal(pretraining_supervisor_loss(zeros, zeros, masks).total, terms.total)


def test_eq4_adds_the_ground_truth_layer_term() -> None:
    masks = _strip_masks()
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    layers = torch.full((1, 2, 1, 4), 0.5) * masks
    true_layers = layers + 0.2 * masks
    base = generator_loss(torch.zeros(1, 4, 1, 4), masks, image * 0, image)
    terms = pretraining_generator_loss(
        torch.zeros(1, 4, 1, 4), masks, image * 0, image, layers, true_layers
    )
    assert terms.parts["ground_truth_layers"].item() == pytest.approx(0.2, abs=1e-5)
    assert terms.total.item() == pytest.approx(base.total.item() + 0.5 * 0.2, abs=1e-5)


def test_gradients_reach_generator_reconstructor_and_supervisor() -> None:
    torch.manual_seed(0)
    unet = {"base_channels": 8, "depth": 2}
    generator = Generator(GeneratorConfig(backbone_options=unet))
    reconstructor = Reconstructor(ReconstructorConfig(channels=(8, 8), convs_per_stage=(1, 1)))
    supervisor = Supervisor(SupervisorConfig(backbone_options=unet, scale=2))
    image = torch.rand(2, 1, 16, 16)
    masks = torch.zeros(2, 2, 16, 16)
    masks[:, 0, :10], masks[:, 1, 6:] = 1, 1

    layers = generator(image, masks)
    recon = reconstruct(layers, masks, reconstructor(image))
    generator_loss(supervisor(layers), masks, recon, image).total.backward()
    for network in (generator, reconstructor):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())

    supervisor.zero_grad()
    real_layers = image * masks
    supervisor_loss(
        supervisor(real_layers), masks, supervisor(layers.detach()), masks
    ).total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in supervisor.parameters())


def test_rejects_bad_weights_and_shapes() -> None:
    with pytest.raises(ValueError, match="a0"):
        LossWeights(a0=-1)
    with pytest.raises(ValueError, match="dice_smooth"):
        LossWeights(dice_smooth=0)
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="differ"):
        masked_rmse(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), torch.ones(1, 1, 2, 2))
