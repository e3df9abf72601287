"""The segmenter's overlap loss and its checkpoint selection."""

from __future__ import annotations

import torch

from trainer.frontend.train_segmenter import overlap_dice_loss, selection_score


def _logits(masks: torch.Tensor) -> torch.Tensor:
    return (masks * 2 - 1) * 20.0  # confident logits of binary masks


def test_overlap_loss_rewards_the_annotated_intersection() -> None:
    target = torch.zeros(1, 2, 32, 32)
    target[0, 0, 4:20] = 1  # upper bone
    target[0, 1, 14:30] = 1  # lower bone: rows 14-19 overlap
    assert overlap_dice_loss(_logits(target), target) < 0.01
    # The same bones without the hidden part: no intersection predicted.
    modal = target.clone()
    modal[0, 0, 14:20] = 0
    assert overlap_dice_loss(_logits(modal), target) > 0.99
    # A batch without any overlapping sample contributes nothing (and still has a graph).
    apart = torch.zeros(2, 2, 32, 32)
    apart[:, 0, :10], apart[:, 1, 20:] = 1, 1
    logits = _logits(apart).requires_grad_()
    loss = overlap_dice_loss(logits, apart)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_selection_needs_overlap_and_per_bone_dice() -> None:
    good = {"dice_upper": 0.98, "dice_lower": 0.97, "dice_overlap": 0.7}
    thin = {"dice_upper": 0.99, "dice_lower": 0.99, "dice_overlap": 0.3}
    assert selection_score(good) < selection_score(thin)
    assert selection_score({**good, "dice_overlap": None}) == -0.5 * 0.97
