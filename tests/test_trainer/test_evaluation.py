"""Separation report: its keys, and that its measures tell separation from non-separation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from blsgan_core.data import read_manifests, split_by_case
from blsgan_core.inference import SeparationResult
from blsgan_core.reconstruction import reconstruct
from blsgan_core.segment import load_segmenter, node_masks, segment_masks
from blsgan_core.synthetic import SyntheticConfig
from trainer.datasets import SampleStore
from trainer.evaluation.predicted_masks import with_predicted_masks
from trainer.evaluation.separation import (
    PSNR_CAP_DB,
    EvalJoint,
    Separator,
    identity_separator,
    real_joints,
    synthetic_joints,
    trivial_separator,
)
from trainer.evaluation.separation_report import (
    evaluate_separation,
    other_bone_leak,
    synthetic_region_scores,
)

LABEL = "shifts 1-8 px"


@pytest.fixture(scope="module")
def joints(small_manifest: Path) -> tuple[list[EvalJoint], list[EvalJoint]]:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    return real_joints(records, store), synthetic_joints(records, store, seed=3)


def _oracle(synthetic: list[EvalJoint]) -> Separator:
    """A separator that knows the true layers and k of each synthetic joint."""
    by_image = {joint.image.tobytes(): joint for joint in synthetic}

    def separate(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        truths = [by_image[image[0].numpy().tobytes()] for image in images]
        layers = torch.stack([torch.from_numpy(np.asarray(j.true_layers)) for j in truths])
        k = torch.tensor([j.true_k for j in truths])
        return SeparationResult(layers, k, reconstruct(layers, masks, k))

    return separate


SEPARATORS = {"trivial": trivial_separator, "identity": identity_separator}


def test_report_keys_counts_and_bins(joints: tuple[list[EvalJoint], list[EvalJoint]]) -> None:
    real, synthetic = joints
    report = evaluate_separation(real, {LABEL: synthetic}, SEPARATORS)
    assert report["task"] == "separation" and report["separators"] == ["trivial", "identity"]
    assert report["n_images"] == len(real) + len(synthetic) > 0
    assert "no patient id" in report["split_note"] and report["detail_sigma_px"] > 0
    for name in SEPARATORS:
        for key in ("overlap_psnr", "bones_psnr", "whole_crop_psnr", "k", "laplace_k"):
            assert set(report["real"][name][key]) == {"mean", "std", "n"}
            assert report["real"][name][key]["n"] == len(real)
    part = report["synthetic"][LABEL]
    assert part["n_images"] == len(synthetic)
    bins = part["by_overlap"]
    assert [row["bin"] for row in bins] == ["<100", "100-400", "400-1000", ">=1000"]
    assert sum(row["n_images"] for row in bins) == len(synthetic)
    assert sum(row["trivial"]["layer_psnr"]["n"] for row in bins) == len(synthetic)


def test_only_the_overlap_and_the_true_layers_tell_separation_apart(
    joints: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    real, synthetic = joints
    report = evaluate_separation(real, {LABEL: synthetic}, SEPARATORS)
    trivial, identity = report["real"]["trivial"], report["real"]["identity"]
    # Whole crop: both answers that separate nothing look excellent...
    assert trivial["whole_crop_psnr"]["mean"] > 60 and identity["whole_crop_psnr"]["mean"] > 30
    # ...inside the overlap the identity layers (both bones counted twice) fall apart,
    # while the trivial answer still reproduces the input: reconstruction cannot show
    # separation, only set a floor.
    assert identity["overlap_psnr"]["mean"] < 25 < trivial["overlap_psnr"]["mean"]
    assert trivial["bones_psnr"]["mean"] > identity["bones_psnr"]["mean"]
    # Against the true layers neither separates; the true layers themselves are perfect.
    part = report["synthetic"][LABEL]
    assert max(part[name]["layer_psnr"]["mean"] for name in SEPARATORS) < 20
    oracle = evaluate_separation([], {LABEL: synthetic}, {"oracle": _oracle(synthetic)})
    oracle = oracle["synthetic"][LABEL]["oracle"]
    assert oracle["layer_psnr"]["mean"] == oracle["detail_psnr"]["mean"] == PSNR_CAP_DB
    assert oracle["seam_ratio"]["mean"] == pytest.approx(1.0)
    assert part["identity"]["seam_ratio"]["mean"] > 1.5  # a second bone pasted in
    # The identity layers keep much of the other bone in the overlap; the truth none.
    assert oracle["other_bone_leak"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert part["identity"]["other_bone_leak"]["mean"] > 0.3
    assert oracle["k_abs_error"]["mean"] < 1e-6 and oracle["k_pearson_r"] == pytest.approx(1.0)


def test_synthetic_overlaps_are_seeded_and_the_split_matches_training(
    small_manifest: Path,
) -> None:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    a = synthetic_joints(records, store, seed=5)
    b = synthetic_joints(list(reversed(records)), store, seed=5)
    c = synthetic_joints(records, store, seed=6)
    assert [j.image.tobytes() for j in a] == [j.image.tobytes() for j in b]
    assert [j.image.tobytes() for j in a] != [j.image.tobytes() for j in c]
    assert [j.image.tobytes() for j in synthetic_joints(records, store, seed=5, limit=2)] == [
        j.image.tobytes() for j in a[:2]
    ]
    train, validation = split_by_case(records, validation_fraction=0.25, seed=0)
    assert not {r.case for r in train} & {r.case for r in validation}


def test_shifts_beyond_the_training_range_make_larger_overlaps(small_manifest: Path) -> None:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    trained = synthetic_joints(records, store, seed=1)
    beyond = synthetic_joints(records, store, seed=1, options=SyntheticConfig(9, 16))
    assert np.mean([j.overlap_px for j in beyond]) > 2 * np.mean([j.overlap_px for j in trained])


def test_predicted_masks_replace_the_input_but_not_the_truth(
    joints: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    real, synthetic = joints
    segmenter = load_segmenter()
    predicted = with_predicted_masks(real[:3] + synthetic[:2], segmenter)
    images = np.stack([joint.image for joint in real[:3] + synthetic[:2]])
    # The masks the node gives BLS-GAN; at threshold 0.5 the outlines it shows.
    given = np.stack([joint.given_masks for joint in predicted])
    assert np.array_equal(given, node_masks(images, segmenter).for_separation)
    outlines = with_predicted_masks(real[:3], segmenter, separation_threshold=0.5)
    assert np.array_equal(
        np.stack([joint.given_masks for joint in outlines]), segment_masks(images[:3], segmenter)
    )
    for before, after in zip(real[:3] + synthetic[:2], predicted, strict=True):
        assert after.input_masks is not None and after.input_background is not None
        assert after.input_masks.shape == before.masks.shape
        assert np.array_equal(after.masks, before.masks)
        assert not np.array_equal(after.given_masks, before.masks)  # drawn by the segmenter
    report = evaluate_separation(predicted[:3], {LABEL: predicted[3:]}, SEPARATORS)
    dice = report["real"]["identity"]["overlap_dice"]
    assert dice["n"] == 3 and 0 < dice["mean"] < 1


def test_nothing_to_evaluate_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_separation([], {LABEL: []}, SEPARATORS)


def test_other_bone_leak_is_the_slope_of_each_layers_error_on_the_other_bone() -> None:
    rng = np.random.default_rng(0)
    truths = rng.uniform(0.2, 0.8, size=(2, 8, 8))
    cap = np.zeros((8, 8), dtype=bool)
    cap[2:7, 1:7] = True  # 30 px, above the 20 px an overlap needs
    centred = [t - t[cap].mean() for t in truths[::-1]]  # the other bone, mean removed
    # Upper layer keeps half of the lower bone, the lower layer a quarter of the upper
    # one, both plus a constant offset, which does not count.
    layers = truths + np.stack([0.5 * centred[0] + 0.1, 0.25 * centred[1] - 0.05])
    assert other_bone_leak(layers, truths, cap) == pytest.approx((0.5 + 0.25) / 2)
    assert other_bone_leak(truths, truths, cap) == pytest.approx(0.0)
    small = np.zeros_like(cap)
    small[3, 3:8] = True  # 5 px: no slope is measured
    assert other_bone_leak(layers, truths, small) is None
    flat = truths.copy()
    flat[1][cap] = 0.5
    assert other_bone_leak(layers, flat, cap) is None


def test_given_masks_are_scored_where_either_overlap_is() -> None:
    """Hand-computed: the true overlap is columns 2-3, the given one columns 3-4; the
    layers are exact in the true overlap. In column 4 the given upper mask holds no upper
    bone, so the upper layer should hold the soft tissue (0.2), which it does; the lower
    layer is off by 0.1 there."""
    truths = np.zeros((2, 4, 8), dtype=np.float32)
    truths[:, :, 2:4] = 0.5
    masks = np.zeros((2, 4, 8), dtype=bool)
    masks[0, :, :4], masks[1, :, 2:] = True, True
    given = np.zeros_like(masks)
    given[0, :, :5], given[1, :, 3:] = True, True
    layers = truths.copy()
    layers[0, :, 4], layers[1, :, 4] = 0.2, 0.1
    joint = EvalJoint(
        name="hand",
        image=np.full((4, 8), 0.5, dtype=np.float32),
        masks=masks,
        background=np.full((4, 8), 0.2, dtype=np.float32),
        overlap_px=8,
        true_layers=truths,
        true_k=0.75,
        input_masks=given,
        input_background=np.zeros((4, 8), dtype=np.float32),
    )
    output = SeparationResult(torch.from_numpy(layers), torch.tensor(0.7), torch.zeros(1, 4, 8))
    scores = synthetic_region_scores(joint, output)
    assert scores["layer_psnr"] == PSNR_CAP_DB  # exact where the bones overlap
    assert scores["overlap_dice"] == pytest.approx(2 * 4 / (8 + 8))
    # columns 2-4 (12 px): the upper layer exact, the lower off by 0.1 on 4: mse 0.01 / 3
    expected = (PSNR_CAP_DB + 10 * np.log10(300)) / 2
    assert scores["either_overlap_layer_psnr"] == pytest.approx(expected, abs=1e-4)
    # A model that widened the given masks is scored on the masks it used: the upper mask
    # reaching column 5 adds column 5 (exact: soft tissue above, 0 below) to the region.
    used = given.copy()
    used[0, :, 5] = True
    layers[0, :, 5] = 0.2
    widened = SeparationResult(
        torch.from_numpy(layers), torch.tensor(0.7), torch.zeros(1, 4, 8), torch.from_numpy(used)
    )
    scores = synthetic_region_scores(joint, widened)
    assert scores["overlap_dice"] == pytest.approx(2 * 4 / (8 + 8))  # the segmenter's masks
    # columns 2-5 (16 px): the lower layer off by 0.1 on 4: mse 0.01 / 4
    expected = (PSNR_CAP_DB + 10 * np.log10(400)) / 2
    assert scores["either_overlap_layer_psnr"] == pytest.approx(expected, abs=1e-4)
