"""The generator step adds the seam prior only where it was asked for and compares the
true layers where they lie; a training step updates the supervisor as often as asked."""

from contextlib import nullcontext
from dataclasses import replace

import pytest
import torch

from blsgan_core.losses import LossWeights, masked_rmse
from blsgan_core.model import BLSGANModel
from trainer.config import load_preset
from trainer.loop import make_optimizers
from trainer.steps import Batch, StepSettings, generator_update, training_step


def _batch(size: int) -> Batch:
    """One synthetic joint (true layers known) and one real joint, overlapping bones."""
    masks = torch.zeros(2, 2, size, size)
    masks[:, 0, : size // 2 + 4] = 1
    masks[:, 1, size // 2 - 4 :] = 1
    image = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    return Batch(
        image=image,
        masks=masks,
        true_layers=image * masks,
        has_truth=torch.tensor([True, False]),
        true_k=torch.tensor([0.75, float("nan")]),
    )


@pytest.mark.parametrize(
    ("phase", "weight", "logged"), [(2, 1.0, True), (2, 0.0, False), (1, 1.0, False)]
)
def test_seam_prior_on_real_joints_of_phase_2_only(phase: int, weight: float, logged: bool) -> None:
    config = load_preset("tiny")
    torch.manual_seed(0)
    model = BLSGANModel(config.blsgan_config(), with_supervisor=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    settings = StepSettings(LossWeights(seam_prior=weight), False, nullcontext())
    _, losses = generator_update(model, _batch(config.data.crop_size), phase, settings, optimizer)
    assert ("seam_prior" in losses) is logged
    if logged:
        assert losses["seam_prior"] >= 0.0


@pytest.mark.parametrize("steps", [1, 3])
def test_supervisor_updated_supervisor_steps_times_per_batch(steps: int) -> None:
    config = load_preset("tiny")
    torch.manual_seed(0)
    model = BLSGANModel(config.blsgan_config(), with_supervisor=True)
    optimizers = make_optimizers(model, config)
    settings = StepSettings(LossWeights(), True, nullcontext(), supervisor_steps=steps)
    training_step(model, _batch(config.data.crop_size), 2, settings, optimizers)

    def updates(optimizer: torch.optim.Optimizer) -> set[int]:
        return {int(state["step"]) for state in optimizer.state.values()}

    assert updates(optimizers["generator"]) == {1}
    assert updates(optimizers["supervisor"]) == {steps}


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_supervisor_steps_must_be_a_positive_integer(steps: object) -> None:
    config = load_preset("tiny")
    with pytest.raises(ValueError, match="supervisor_steps"):
        replace(config, optim=replace(config.optim, supervisor_steps=steps))


def test_true_layers_are_compared_inside_the_given_or_the_true_masks() -> None:
    config = load_preset("tiny")
    size = config.data.crop_size
    exact = _batch(size)
    true_masks = exact.masks.clone()
    true_masks[:, 1, size // 2 - 8 :] = 1  # the true lower bone reaches 4 rows further up
    true_layers = exact.image * true_masks
    moved = replace(
        exact,
        true_layers=true_layers,
        true_masks=true_masks,
        has_truth=torch.ones(2, dtype=torch.bool),
    )
    settings = StepSettings(LossWeights(), False, nullcontext())
    results = []
    for batch in (replace(moved, true_masks=None), moved):
        torch.manual_seed(0)
        model = BLSGANModel(config.blsgan_config(), with_supervisor=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        layers, logged = generator_update(model, batch, 1, settings, optimizer)
        results.append((layers, logged["ground_truth_layers"]))
    (layers, given_only), (same_layers, widened) = results
    assert torch.equal(layers, same_layers)  # the networks saw the same masks
    assert given_only == pytest.approx(
        masked_rmse(layers, true_layers, exact.masks).item(), rel=1e-5
    )
    region = torch.maximum(exact.masks, true_masks)
    assert widened == pytest.approx(masked_rmse(layers, true_layers, region).item(), rel=1e-5)
    assert widened > given_only


@pytest.mark.parametrize(("phase", "ground_truth"), [(1, False), (2, True), (2, False)])
def test_soft_tissue_rim_is_the_true_layer_error_where_a_given_mask_holds_no_bone(
    phase: int, ground_truth: bool
) -> None:
    """Given masks one row wider than the true ones: the term is the RMSE over that rim of
    the joints with true layers, logged wherever the true layers are used."""
    config = load_preset("tiny")
    size = config.data.crop_size
    exact = _batch(size)
    wider = exact.masks.clone()
    wider[:, 0, size // 2 + 4] = 1  # the upper mask one row further down
    batch = replace(exact, masks=wider, true_masks=exact.masks)
    if phase == 1:
        batch = replace(batch, has_truth=torch.ones(2, dtype=torch.bool))
    settings = StepSettings(LossWeights(soft_tissue_rim=2.0), ground_truth, nullcontext())
    torch.manual_seed(0)
    model = BLSGANModel(config.blsgan_config(), with_supervisor=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    layers, logged = generator_update(model, batch, phase, settings, optimizer)
    if phase == 2 and not ground_truth:
        assert "soft_tissue_rim" not in logged
        return
    truth = batch.has_truth
    rim = batch.rim
    assert int(rim[0].sum()) == size  # one row of the upper mask
    expected = masked_rmse(layers[truth], batch.true_layers[truth], rim[truth])
    assert logged["soft_tissue_rim"] == pytest.approx(expected.item(), rel=1e-5)
    assert logged["soft_tissue_rim"] > 0
