"""The segmenter's overlap loss and its checkpoint selection."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from blsgan_core.networks.unet import UNetConfig
from blsgan_core.segment.model import Segmenter, SegmenterConfig
from trainer.frontend.train_segmenter import mask_losses, overlap_dice_loss, selection_score


def _logits(masks: torch.Tensor) -> torch.Tensor:
    return (masks * 2 - 1) * 20.0  # confident logits of binary masks


def _overlap(masks: torch.Tensor) -> torch.Tensor:
    """The sigmoid head's overlap probability for confident logits of ``masks``."""
    bones = torch.sigmoid(_logits(masks))
    return bones[:, 0] * bones[:, 1]


def test_overlap_loss_rewards_the_annotated_intersection() -> None:
    target = torch.zeros(1, 2, 32, 32)
    target[0, 0, 4:20] = 1  # upper bone
    target[0, 1, 14:30] = 1  # lower bone: rows 14-19 overlap
    assert overlap_dice_loss(_overlap(target), target) < 0.01
    # The same bones without the hidden part: no intersection predicted.
    modal = target.clone()
    modal[0, 0, 14:20] = 0
    assert overlap_dice_loss(_overlap(modal), target) > 0.99
    # A batch without any overlapping sample contributes nothing (and still has a graph).
    apart = torch.zeros(2, 2, 32, 32)
    apart[:, 0, :10], apart[:, 1, 20:] = 1, 1
    logits = _logits(apart).requires_grad_()
    bones = torch.sigmoid(logits)
    loss = overlap_dice_loss(bones[:, 0] * bones[:, 1], apart)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_selection_needs_overlap_and_per_bone_dice() -> None:
    good = {"dice_upper": 0.98, "dice_lower": 0.97, "dice_overlap": 0.7}
    thin = {"dice_upper": 0.99, "dice_lower": 0.99, "dice_overlap": 0.3}
    assert selection_score(good) < selection_score(thin)
    assert selection_score({**good, "dice_overlap": None}) == -0.5 * 0.97


def _regions_segmenter() -> Segmenter:
    unet = UNetConfig(in_channels=1, out_channels=4, base_channels=8, depth=2, max_channels=16)
    return Segmenter(SegmenterConfig(unet=unet, input_size=32, crop_size=32, head="regions"))


def test_the_regions_head_predicts_the_overlap_itself() -> None:
    target = torch.zeros(1, 2, 32, 32)
    target[0, 0, 4:20] = 1  # upper bone
    target[0, 1, 14:30] = 1  # lower bone: rows 14-19 overlap
    regions = (target[:, 0] + 2 * target[:, 1]).long()  # 0 background ... 3 overlap
    logits = torch.nn.functional.one_hot(regions, 4).permute(0, 3, 1, 2).float() * 20.0
    model = _regions_segmenter()
    bones, overlap = model.probabilities(logits)
    assert torch.allclose(overlap, target[:, 0] * target[:, 1], atol=1e-6)
    assert torch.allclose(bones, target, atol=1e-6)  # each bone = its own region + overlap
    right = mask_losses(model, logits, target, overlap_weight=1.0)
    assert float(right["loss"]) < 0.01 and float(right["overlap"]) < 0.01
    # Calling the overlap "upper only" keeps both amodal masks wrong there.
    wrong = logits.clone()
    wrong[:, [1, 3], 14:20] = wrong[:, [3, 1], 14:20]
    worse = mask_losses(model, wrong, target, overlap_weight=1.0)
    assert float(worse["overlap"]) > 0.99 and float(worse["loss"]) > 1.0


def test_the_regions_head_runs_with_a_refiner() -> None:
    config = replace(_regions_segmenter().config, refine_channels=8)
    crops = torch.rand(2, 1, 32, 32)
    assert Segmenter(config)(crops).shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="regions head needs 1 input and 4 output"):
        SegmenterConfig(head="regions")
