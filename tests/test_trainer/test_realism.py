"""The automated Turing test: a patch classifier that can tell, and says so by its AUC."""

from pathlib import Path

import numpy as np
import pytest
import torch

from blsgan_core.data import read_manifests
from blsgan_core.inference import SeparationResult
from blsgan_core.mask_margin import widen_masks
from blsgan_core.metrics import roc_auc
from trainer.datasets import SampleStore
from trainer.evaluation.realism import (
    RealismConfig,
    classify,
    layer_patches,
    population_floor,
    real_patches,
    synthetic_turing_test,
    train_classifier,
    turing_test,
    untouched_centre,
    window,
)
from trainer.evaluation.separation import (
    EvalJoint,
    identity_separator,
    real_joints,
    synthetic_joints,
)
from trainer.plots import realism_panel

FAST = RealismConfig(steps=100, seed=0)
LONGER = RealismConfig(steps=200, seed=0)


@pytest.fixture(scope="module")
def bone(small_manifest: Path) -> tuple[list[EvalJoint], list[EvalJoint]]:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    return real_joints(records, store), synthetic_joints(records, store, seed=0)


def test_patches_are_centred_on_the_overlap_and_zero_beyond_the_edge() -> None:
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    patch = window(image, (0, 9), 4)
    assert patch.shape == (4, 4)
    assert patch[2, 2] == image[0, 9] and not patch[:2].any() and not patch[:, 3].any()
    masks = np.zeros((2, 40, 40), dtype=bool)
    masks[0, :22], masks[1, 18:] = True, True  # overlap rows 18-21: centre row 20
    layers = np.stack([masks[0] * 0.5, masks[1] * 0.8]).astype(np.float32)
    config = RealismConfig(patch_size=8, jitter=0, patches_per_layer=1)
    upper, lower = layer_patches(layers, masks, np.random.default_rng(0), config)
    assert np.array_equal(upper, window(layers[0], (20, 20), 8))
    assert upper[:6].min() == 0.5 and not upper[6:].any()  # the upper bone ends at row 21
    assert np.array_equal(lower, window(layers[1], (20, 20), 8))


def test_classifier_separates_what_differs_and_not_what_does_not(
    bone: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    _, synthetic = bone
    patches = real_patches(synthetic, RealismConfig(patches_per_layer=4), seed=0)
    order = np.random.default_rng(0).permutation(len(patches))
    half = len(order) // 2
    real, same = patches[order[:half]], patches[order[half:]]
    # Generated that is real bone too: nothing to learn, AUC near chance on fresh patches.
    fresh = real_patches(synthetic, RealismConfig(patches_per_layer=4), seed=1)
    net = train_classifier(real, same, FAST)
    auc = roc_auc(classify(net, fresh[: len(fresh) // 2]), classify(net, fresh[len(fresh) // 2 :]))
    assert 0.3 < auc < 0.7
    # Generated with a flat grey patch in the middle (a seam): learned at once.
    pasted = same.copy()
    pasted[:, 12:20, 12:20] = 0.5
    # 200 steps: with 100 the AUC depends on the thread count (0.89 on one thread).
    net = train_classifier(real, pasted, LONGER)
    held_real, held_pasted = fresh.copy(), fresh.copy()
    held_pasted[:, 12:20, 12:20] = 0.5
    assert roc_auc(classify(net, held_pasted), classify(net, held_real)) > 0.9
    again = train_classifier(real, pasted, LONGER)  # seeded: the same classifier
    assert np.array_equal(classify(net, fresh), classify(again, fresh))


def test_turing_test_reports_an_auc_per_separator_and_draws_patches(
    bone: tuple[list[EvalJoint], list[EvalJoint]], tmp_path: Path
) -> None:
    real, synthetic = bone
    results = turing_test(
        {"identity": identity_separator},
        (real[:5], synthetic[:5]),
        (real[5:], synthetic[5:]),
        FAST,
    )
    result = results["identity"]
    assert 0 <= result.auc <= 1
    # One classifier per seed, and the median reported: not the luckiest (or worst) seed.
    assert len(result.aucs) == FAST.classifiers == 5
    assert result.auc == pytest.approx(float(np.median(result.aucs)))
    report = result.report()
    assert report["auc_min"] <= report["auc"] <= report["auc_max"]
    assert len(set(result.aucs)) > 1  # each classifier has its own seed
    assert result.n_test == (len(result.test_real), len(result.test_generated))
    assert result.report()["n_train_generated"] == 5 * 2 * FAST.patches_per_layer
    figure = realism_panel(results, tmp_path / "realism.png")
    assert figure.stat().st_size > 1000
    with pytest.raises(ValueError, match="need real and generated"):
        train_classifier(result.test_real[:0], result.test_generated, FAST)


def test_untouched_windows_step_along_each_bone_until_the_overlap_is_out() -> None:
    masks = np.zeros((2, 128, 64), dtype=bool)
    masks[0, :61, 10:50], masks[1, 50:, 10:50] = True, True  # overlap rows 50-60: centre 55
    # A 40 px window around row r spans rows r-20 .. r+19.
    assert untouched_centre(masks, 0, 40) == (30, 30)  # rows 10-49, above the overlap
    assert untouched_centre(masks, 1, 40) == (81, 30)  # rows 61-100, below it
    assert untouched_centre(masks[:, :100], 1, 40) is None  # the crop ends first


def test_population_floor_is_near_chance_for_one_population(
    bone: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    """Untouched bone of synthetic joints against their own true layers: one population,
    the same bone (outside the overlap ``J * M_i`` is the layer), nothing to learn."""
    _, synthetic = bone
    half = len(synthetic) // 2
    train, test = synthetic[:half], synthetic[half:]
    floor = population_floor((train, train), (test, test), LONGER)
    assert floor.n_test[0] > 0 and floor.n_test[1] > 0
    assert 0.3 < floor.auc < 0.7
    # And the real joints' bone beside their overlaps is another population here: both
    # sides are held-out patches, the AUC is a number in [0, 1] with one per classifier.
    real, _ = bone
    other = population_floor((real[:5], train), (real[5:], test), FAST)
    assert 0 <= other.auc <= 1 and len(other.aucs) == FAST.classifiers


def test_on_synthetic_overlaps_true_layers_pass_and_the_input_does_not(
    bone: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    """Without the population confound a separator that returns the true layers scores
    near 0.5, and the identity layers (both bones in each overlap) are found out."""
    _, synthetic = bone
    truth = {joint.image.tobytes(): joint.truth() for joint in synthetic}

    def oracle(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        layers = torch.from_numpy(np.stack([truth[i[0].numpy().tobytes()] for i in images]))
        return SeparationResult(layers, torch.ones(len(images)), images)

    def oracle_with_rim(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        """The true layers over masks widened by 2 px, soft tissue in the rim: what a model
        with a mask margin is taught to return."""
        exact = oracle(images, masks, backgrounds)
        rim = widen_masks(masks, 2) - masks
        layers = exact.layers + rim * backgrounds
        return SeparationResult(layers, exact.k, images, masks + rim)

    half = len(synthetic) // 2
    results = synthetic_turing_test(
        {"oracle": oracle, "rim": oracle_with_rim, "identity": identity_separator},
        synthetic[:half],
        synthetic[half:],
        RealismConfig(steps=200, classifiers=3),
    )
    # Identical patches get identical scores: the oracle cannot be told apart at all, and
    # the rim outside the given outline is not what the test judges.
    assert results["oracle"].auc == pytest.approx(0.5)
    assert results["rim"].auc == pytest.approx(0.5)
    assert results["identity"].auc > 0.9
    # The same windows on both sides: the oracle's patches are the true layers' patches.
    assert np.array_equal(results["oracle"].test_generated, results["oracle"].test_real)
