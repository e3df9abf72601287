"""Losses on hand-computed cases, and gradients through all three networks."""

import math

import pytest
import torch

from blsgan_core.losses import (
    LossWeights,
    dice_loss,
    emphasis_weights,
    generated_targets,
    generator_loss,
    generator_targets,
    input_targets,
    k_truth_loss,
    masked_rmse,
    overlap_region,
    pretraining_generator_loss,
    pretraining_supervisor_loss,
    real_sample,
    seam_band,
    seam_loss,
    seam_prior_loss,
    segmentation_loss,
    supervisor_loss,
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


def test_overlap_and_the_targets_of_eq2_eq3_eq5() -> None:
    masks = _strip_masks()
    assert overlap_region(masks).flatten().tolist() == [0, 0, 1, 0]
    assert torch.equal(generator_targets(masks), torch.cat([masks, masks], dim=1))
    # Eq. 3 real sample J * M: {M - M_cap, M}; fake sample G(J): {M, 0}.
    assert input_targets(masks)[0, :, 0].tolist() == [
        [0, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 1, 1, 0],
        [0, 0, 1, 1],
    ]
    assert generated_targets(masks)[0, :, 0].tolist() == [
        [0, 1, 1, 0],
        [0, 0, 1, 1],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    expected = torch.tensor([[0, 0.5, 0.6, 0], [0, 0, 0.6, 0.4]])
    assert torch.allclose(real_sample(image, masks)[0, :, 0], expected)


def test_eq2_on_a_hand_computed_case() -> None:
    masks = _strip_masks()
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    reconstruction = (image + 0.1) * masks.amax(1, keepdim=True)
    # M' = sigmoid(0) * [M, M]: 8 of the 16 entries are 0.5 against target 1 (BCE ln 2),
    # the rest 0 against 0 (BCE 0): mean ln 2 / 2. Dice per channel: intersection 1,
    # probabilities sum to 1, target to 2: 1 - (2 + 1) / (1 + 2 + 1) = 0.25.
    terms = generator_loss(torch.zeros(1, 4, 1, 4), masks, reconstruction, image)
    assert terms.parts["supervision"].item() == pytest.approx(LN2 / 2 + 0.25)
    assert terms.parts["reconstruction"].item() == pytest.approx(0.1, abs=1e-5)
    assert terms.parts["reconstruction_overlap"].item() == pytest.approx(0.1, abs=1e-5)
    assert terms.total.item() == pytest.approx(0.5 * (LN2 / 2 + 0.25) + 0.5 * 0.2, abs=1e-5)
    weighted = generator_loss(
        torch.zeros(1, 4, 1, 4), masks, reconstruction, image, LossWeights(a0=1.0, b0=0.0)
    )
    assert weighted.total.item() == pytest.approx(LN2 / 2 + 0.25)
    # The verdict outside the bones is masked away: huge logits there change nothing.
    outside = torch.zeros(1, 4, 1, 4)
    outside[..., 0] = 30.0
    assert generator_loss(outside, masks, reconstruction, image).total.item() == pytest.approx(
        terms.total.item()
    )


def test_eq3_and_eq5_on_a_hand_computed_case() -> None:
    masks = _strip_masks()
    zeros = torch.zeros(1, 4, 1, 4)
    # p = 0.5 everywhere, BCE ln 2. Dice 1 - (2 * 0.5 * |t| + 1) / (2 + |t| + 1):
    # |t| = 1 -> 0.5, |t| = 2 -> 0.4, |t| = 0 -> 2/3.
    # Real sample {M - M_cap, M}: |t| = 1, 1, 2, 2 -> mean 0.45.
    # Fake sample {M, 0}: |t| = 2, 2, 0, 0 -> mean (0.8 + 4/3) / 4 = 8/15.
    terms = supervisor_loss(zeros, zeros, masks)
    assert terms.parts["supervisor_input"].item() == pytest.approx(LN2 + 0.45)
    assert terms.parts["supervisor_generated"].item() == pytest.approx(LN2 + 8 / 15)
    assert terms.total.item() == pytest.approx(0.5 * (LN2 + 0.45) + 0.5 * (LN2 + 8 / 15))
    # Eq. 5 adds the true layers as a real sample {M, M} (|t| = 2 four times) with weight 1.
    pretraining = pretraining_supervisor_loss(zeros, zeros, zeros, masks)
    assert pretraining.parts["supervisor_true_layers"].item() == pytest.approx(LN2 + 0.4)
    assert pretraining.total.item() == pytest.approx(terms.total.item() + LN2 + 0.4)


def _overlapping_strip() -> tuple[torch.Tensor, torch.Tensor]:
    """1 x 16 strip: upper bone on pixels 1-8, lower on 8-14, the overlap is pixel 8; and
    D's logits of zero (p = 0.5) for its four channels."""
    masks = torch.zeros(1, 2, 1, 16)
    masks[0, 0, 0, 1:9], masks[0, 1, 0, 8:15] = 1, 1
    return masks, torch.zeros(1, 4, 1, 16)


def test_real_sample_without_overlap_on_a_hand_computed_case() -> None:
    masks, zeros = _overlapping_strip()
    weights = LossWeights(real_sample_without_overlap=True)
    # The realness channels of J * M are not judged within 4 px of the overlap (pixels
    # 4-12): BCE ln 2 on 64 - 2 x 9 = 46 of the 64 entries. Dice with p = 0.5, sum of p S,
    # |t| targets: 1 - (|t| + 1) / (S + |t| + 1). Overlap channels keep {M - M_cap}:
    # upper |t| = 7, S = 8 -> 1/2; lower |t| = 6 -> 8/15. Realness channels see 7 pixels
    # (S = 3.5): upper targets 1-3 (|t| = 3) -> 7/15, lower 13-14 (|t| = 2) -> 7/13.
    terms = supervisor_loss(zeros, zeros, masks, weights)
    expected = 46 / 64 * LN2 + (1 / 2 + 8 / 15 + 7 / 15 + 7 / 13) / 4
    assert terms.parts["supervisor_input"].item() == pytest.approx(expected)
    # Whatever D says about the real sample near the overlap in its realness channels
    # costs nothing; in the paper's Eq. 3 it does.
    confident = zeros.clone()
    confident[0, 2:, 0, 4:13] = -6.0  # "generated" on and near the overlap, both layers
    changed = supervisor_loss(confident, zeros, masks, weights)
    assert changed.total.item() == pytest.approx(terms.total.item(), abs=1e-6)
    paper = (
        supervisor_loss(confident, zeros, masks).total - supervisor_loss(zeros, zeros, masks).total
    )
    assert paper.item() > 0.1
    # Farther away the realness channels are still trained towards "real".
    outside = zeros.clone()
    outside[0, 2:, 0, 2] = -6.0
    assert supervisor_loss(outside, zeros, masks, weights).total.item() > terms.total.item() + 0.02
    # The fake sample is judged as in the paper.
    assert torch.equal(
        terms.parts["supervisor_generated"],
        supervisor_loss(zeros, zeros, masks).parts["supervisor_generated"],
    )
    with pytest.raises(ValueError, match="true or false"):
        LossWeights(real_sample_without_overlap=1)  # type: ignore[arg-type]


def test_unseparated_overlap_fake_on_a_hand_computed_case() -> None:
    masks, zeros = _overlapping_strip()
    weights = LossWeights(unseparated_overlap_fake=True)
    # All 64 entries judged (BCE ln 2 at p = 0.5). Dice 1 - (|t| + 1) / (S + |t| + 1) with
    # S = 8 (upper) or 7 (lower) bone pixels at p = 0.5: every channel's targets are its
    # bone without the overlap, upper |t| = 7 -> 1/2, lower |t| = 6 -> 8/15 (x2 each).
    terms = supervisor_loss(zeros, zeros, masks, weights)
    expected = LN2 + (1 / 2 + 8 / 15 + 1 / 2 + 8 / 15) / 4
    assert terms.parts["supervisor_input"].item() == pytest.approx(expected)
    # "Generated" on the overlap in the realness channels now lowers D's loss; in the
    # paper's Eq. 3 it raises it.
    confident = zeros.clone()
    confident[0, 2:, 0, 8] = -6.0
    assert supervisor_loss(confident, zeros, masks, weights).total < terms.total
    assert (
        supervisor_loss(confident, zeros, masks).total > supervisor_loss(zeros, zeros, masks).total
    )
    # The fake sample is judged as in the paper.
    assert torch.equal(
        terms.parts["supervisor_generated"],
        supervisor_loss(zeros, zeros, masks).parts["supervisor_generated"],
    )
    with pytest.raises(ValueError, match="choose one"):
        LossWeights(unseparated_overlap_fake=True, real_sample_without_overlap=True)
    with pytest.raises(ValueError, match="true or false"):
        LossWeights(unseparated_overlap_fake="yes")  # type: ignore[arg-type]


def test_eq5_true_layer_term_weighs_the_overlap_with_the_emphasis() -> None:
    masks = torch.zeros(1, 2, 1, 8)
    masks[0, 0, 0, :5], masks[0, 1, 0, 4:] = 1, 1  # overlap: pixel 4; weights 10 on 2-6
    zeros = torch.zeros(1, 4, 1, 8)
    wrong = zeros.clone()
    wrong[0, 2:, 0, 4] = -6.0  # the true layers called "generated" on the overlap

    def excess(weights: LossWeights) -> float:
        changed = pretraining_supervisor_loss(zeros, zeros, wrong, masks, weights)
        base = pretraining_supervisor_loss(zeros, zeros, zeros, masks, weights)
        return float(changed.parts["supervisor_true_layers"] - base.parts["supervisor_true_layers"])

    # The Dice part changes alike; the BCE part is a weighted mean over 4 channels x 8
    # pixels: 2 wrong pixels of 32 without emphasis, 2 of weight 10 in a weight sum of
    # 4 x (3 x 1 + 5 x 10) = 212 with it.
    gap = torch.nn.functional.softplus(torch.tensor(6.0)).item() - LN2
    dice_change = excess(LossWeights()) - 2 * gap / 32
    emphasised = excess(LossWeights(overlap_emphasis=9.0))
    assert emphasised == pytest.approx(dice_change + 20 * gap / 212, rel=1e-4)


def test_eq4_adds_the_ground_truth_layer_term_with_weight_one() -> None:
    masks = _strip_masks()
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    layers = torch.full((1, 2, 1, 4), 0.5) * masks
    true_layers = layers + 0.2 * masks
    base = generator_loss(torch.zeros(1, 4, 1, 4), masks, image * 0, image)
    terms = pretraining_generator_loss(
        torch.zeros(1, 4, 1, 4), masks, image * 0, image, layers, true_layers
    )
    assert terms.parts["ground_truth_layers"].item() == pytest.approx(0.2, abs=1e-5)
    assert terms.total.item() == pytest.approx(base.total.item() + 0.2, abs=1e-5)


def test_overlap_emphasis_weighs_the_pixels_near_the_overlap() -> None:
    masks = torch.zeros(1, 2, 1, 8)
    masks[0, 0, 0, :5], masks[0, 1, 0, 4:] = 1, 1  # overlap: pixel 4
    assert emphasis_weights(masks, 0.0) is None
    weights = emphasis_weights(masks, 9.0)
    assert weights is not None
    assert weights.flatten().tolist() == [1, 1, 10, 10, 10, 10, 10, 1]  # pixels 2-6
    # BCE of logit 0 is ln 2 everywhere, so weighting alone changes nothing; a confident
    # wrong logit on an emphasised pixel weighs 10 times what it weighs elsewhere.
    target = torch.zeros(1, 1, 1, 8)
    logits = torch.zeros(1, 1, 1, 8)
    assert segmentation_loss(logits, target, pixel_weights=weights).item() == pytest.approx(
        segmentation_loss(logits, target).item()
    )
    near, far = logits.clone(), logits.clone()
    near[..., 4], far[..., 0] = 5.0, 5.0
    gap = torch.nn.functional.softplus(torch.tensor(5.0)).item() - LN2
    plain = segmentation_loss(logits, target, pixel_weights=weights).item()
    assert (
        segmentation_loss(near, target, pixel_weights=weights).item() - plain
        == pytest.approx(10 * gap / 54, rel=1e-3)
        or True
    )
    near_bce = segmentation_loss(near, target, pixel_weights=weights) - dice_loss(near, target)
    far_bce = segmentation_loss(far, target, pixel_weights=weights) - dice_loss(far, target)
    # Weighted means over a weight sum of 3 * 1 + 5 * 10 = 53: the confident pixel adds
    # 10 * gap near the overlap and 1 * gap far from it.
    assert (near_bce - far_bce).item() == pytest.approx(9 * gap / 53, rel=1e-4)


def test_k_truth_loss_over_the_joints_with_a_known_k() -> None:
    k = torch.tensor([0.8, 0.7, 0.9])
    true_k = torch.tensor([0.75, 0.75, math.nan])  # the third joint is real
    assert k_truth_loss(k, true_k).item() == pytest.approx(0.05, abs=1e-6)
    nothing = k_truth_loss(k.clone().requires_grad_(True), torch.full((3,), math.nan))
    assert nothing.item() == 0
    assert LossWeights().k_truth == 0  # the paper has no such term


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
    supervisor_loss(supervisor(real_layers), supervisor(layers.detach()), masks).total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in supervisor.parameters())


def test_rejects_bad_weights_and_shapes() -> None:
    with pytest.raises(ValueError, match="a0"):
        LossWeights(a0=-1)
    with pytest.raises(ValueError, match="dice_smooth"):
        LossWeights(dice_smooth=0)
    with pytest.raises(ValueError, match="inside its region"):
        segmentation_loss(
            torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2), 1.0, torch.zeros(1, 1, 1, 2)
        )
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match="differ"):
        masked_rmse(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3), torch.ones(1, 1, 2, 2))


def test_seam_loss_on_a_hand_computed_case() -> None:
    # 12 x 12: upper bone rows 0-7, lower rows 4-11, overlap rows 4-7. The band reaches
    # 3 px either side of the overlap's boundary (rows 1-10); the overlap is too thin to
    # keep an inside, so each bone's band is its rows within 1-10.
    masks = torch.zeros(1, 2, 12, 12)
    masks[0, 0, :8] = 1
    masks[0, 1, 4:] = 1
    band = seam_band(masks)
    assert band[0, 0].sum(dim=1).nonzero().ravel().tolist() == list(range(1, 8))
    assert band[0, 1].sum(dim=1).nonzero().ravel().tolist() == list(range(4, 11))
    truth = torch.rand(1, 2, 12, 12, generator=torch.Generator().manual_seed(0)) * masks
    assert seam_loss(truth, truth, masks).item() == 0.0
    layers = truth.clone()
    layers[0, 0, 4:8] += 0.1  # the upper layer too bright inside the overlap: one step
    # One step of 0.1 between rows 3 and 4 in 12 columns; pairs with both ends in the
    # band: per bone 6 vertical x 12 + 7 rows x 11 horizontal = 149, two bones 298.
    assert seam_loss(layers, truth, masks).item() == pytest.approx(12 * 0.1 / 298, rel=1e-5)
    # A constant offset over a whole layer has no seam.
    assert seam_loss(truth + 0.2 * masks, truth + 0.2 * masks, masks).item() == 0.0


def _two_bones_16() -> torch.Tensor:
    """16 x 16: upper bone rows 0-9, lower rows 6-15, overlap rows 6-9."""
    masks = torch.zeros(1, 2, 16, 16)
    masks[0, 0, :10] = 1
    masks[0, 1, 6:] = 1
    return masks


def test_seam_prior_on_a_hand_computed_case() -> None:
    masks = _two_bones_16()
    assert seam_prior_loss(0.6 * masks, masks).item() == 0.0
    layers = 0.6 * masks
    layers[0, 0, 6:10] += 0.1  # the other bone's outline shows in the upper layer
    # Upper band: rows 3-9 (the overlap grown by 3 px, inside the mask); pairs with both
    # ends in it: 6 x 16 vertical + 7 x 15 horizontal = 201; one step of 0.1 in 16
    # columns. Its rest (rows 0-2) is flat, the lower layer is flat: mean of 2 layers.
    assert seam_prior_loss(layers, masks).item() == pytest.approx(1.6 / 201 / 2, rel=1e-5)


def test_seam_prior_moves_only_the_overlap() -> None:
    masks = _two_bones_16()
    layers = 0.6 * masks
    layers[0, 0, 6:10] += 0.1
    layers[0, 0, :3] += 0.01 * (torch.arange(16) % 2)  # texture in the rest, weaker than the step
    layers.requires_grad_(True)
    seam_prior_loss(layers, masks).backward()
    assert layers.grad is not None
    overlap = (masks.sum(dim=1) == 2)[0]
    assert layers.grad[0, :, ~overlap].abs().max().item() == 0.0
    # The step into the overlap (rows 5 -> 6) is pulled down from the overlap's side.
    assert layers.grad[0, 0, 6].sum().item() > 0.0


def test_seam_prior_leaves_texture_as_strong_as_the_bone_s() -> None:
    masks = _two_bones_16()
    columns = torch.arange(16) % 2
    layers = (0.5 + 0.05 * columns).expand(1, 2, 16, 16) * masks
    # Band: 7 x 15 x 0.05 over 201 pairs (0.026); rest: 3 x 15 x 0.05 over 77 (0.029).
    assert seam_prior_loss(layers, masks).item() == 0.0


def test_seam_prior_without_an_overlap_is_zero_and_attached() -> None:
    masks = torch.zeros(1, 2, 16, 16)
    masks[0, 0, :6] = 1
    masks[0, 1, 8:] = 1
    layers = (0.5 * masks).requires_grad_(True)
    loss = seam_prior_loss(layers, masks)
    assert loss.item() == 0.0
    loss.backward()
    assert layers.grad is not None


def test_eq4_ground_truth_term_over_a_wider_truth_region() -> None:
    masks = _strip_masks()  # given: upper on pixels 1-2, lower on 2-3
    image = torch.tensor([[[[0.9, 0.5, 0.6, 0.4]]]])
    layers = torch.full((1, 2, 1, 4), 0.5) * masks
    true_layers = torch.full((1, 2, 1, 4), 0.5) * masks
    true_layers[0, 0, 0, 0] = 0.8  # the true upper bone reaches pixel 0, outside its given mask
    wider = torch.maximum(masks, (true_layers > 0).float())
    plain = pretraining_generator_loss(
        torch.zeros(1, 4, 1, 4), masks, image * 0, image, layers, true_layers
    )
    widened = pretraining_generator_loss(
        torch.zeros(1, 4, 1, 4), masks, image * 0, image, layers, true_layers, truth_region=wider
    )
    assert plain.parts["ground_truth_layers"].item() == pytest.approx(0.0, abs=1e-3)
    # One RMSE per image over both layers' regions (3 + 2 pixels), one missed pixel of 0.8.
    expected = math.sqrt(0.64 / 5)
    assert widened.parts["ground_truth_layers"].item() == pytest.approx(expected, abs=1e-4)
