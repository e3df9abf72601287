"""Separation report: its keys, and that its synthetic layer metric can tell separation apart."""

from pathlib import Path

import pytest
import torch

from blsgan_core.data import read_manifests, split_by_case
from blsgan_core.inference import SeparationResult
from blsgan_core.reconstruction import reconstruct
from trainer.datasets import SampleStore
from trainer.evaluation.separation import (
    PSNR_CAP_DB,
    EvalJoint,
    evaluate_separation,
    identity_separator,
    real_joints,
    synthetic_joints,
)


@pytest.fixture(scope="module")
def joints(small_manifest: Path) -> tuple[list[EvalJoint], list[EvalJoint]]:
    records = read_manifests(small_manifest).records
    store = SampleStore()
    return real_joints(records, store), synthetic_joints(records, store, seed=3)


def _oracle(synthetic: list[EvalJoint]):  # type: ignore[no-untyped-def]
    """A separator that knows the true layers and k of each synthetic joint."""
    by_image = {joint.image.tobytes(): joint for joint in synthetic}

    def separate(images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor):  # type: ignore[no-untyped-def]
        truths = [by_image[image[0].numpy().tobytes()] for image in images]
        layers = torch.stack([torch.from_numpy(joint.true_layers) for joint in truths])
        k = torch.tensor([joint.true_k for joint in truths])
        return SeparationResult(layers, k, reconstruct(layers, masks, k))

    return separate


def test_report_keys_and_baseline_beside_the_model(
    joints: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    real, synthetic = joints
    report = evaluate_separation(real, synthetic, identity_separator, baseline=True)
    assert report["task"] == "separation"
    assert report["n_images"] == len(real) + len(synthetic) > 0
    for key in ("mse", "ssim", "psnr"):
        assert set(report["real"][key]) == {"mean", "std"}
    assert report["real"]["mse"]["std"] >= 0
    assert report["synthetic"]["layer_psnr"]["mean"] is not None
    assert report["synthetic"]["layer_mse"]["mean"] > 0
    assert {row["bin"] for row in report["by_overlap"]["real"]} >= {"20-100", ">=800"}
    assert sum(row["n_images"] for row in report["by_overlap"]["synthetic"]) == len(synthetic)
    baseline = report["baseline"]
    assert set(baseline) == {"real", "synthetic", "by_overlap"}
    # The identity layers are the model here, so both must agree.
    assert baseline["real"]["psnr"] == report["real"]["psnr"]


def test_identity_layers_reconstruct_well_but_separate_badly(
    joints: tuple[list[EvalJoint], list[EvalJoint]],
) -> None:
    real, synthetic = joints
    identity = evaluate_separation(real, synthetic, identity_separator)
    oracle = evaluate_separation([], synthetic, _oracle(synthetic))
    # The paper's real protocol cannot tell the identity layers from a separation...
    assert identity["real"]["psnr"]["mean"] > 30
    # ...the synthetic layer error can: identity ~15 dB, the true layers hit the cap.
    assert identity["synthetic"]["layer_psnr"]["mean"] < 25
    assert oracle["synthetic"]["layer_psnr"]["mean"] == PSNR_CAP_DB
    assert oracle["synthetic"]["k_abs_error"]["mean"] < 1e-6
    assert identity["synthetic"]["k_abs_error"]["mean"] < 1e-5  # same background, same k


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
    train, validation = split_by_case(records, validation_fraction=0.25, seed=0)
    assert not {r.case for r in train} & {r.case for r in validation}


def test_nothing_to_evaluate_is_an_error() -> None:
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate_separation([], [], identity_separator)
