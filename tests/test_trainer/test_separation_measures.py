"""Per-epoch separation measures: perfect layers, identity layers, a seam, selection by hand."""

import math

import numpy as np
import pytest
import torch

from blsgan_core.inference import SeparationResult
from blsgan_core.networks.supervisor import Supervisor, SupervisorConfig
from blsgan_core.synthetic import Shifts, synthesize_with_shifts
from trainer.evaluation.separation import EvalJoint
from trainer.separation_measures import (
    calibrated_verdict,
    laplace_k,
    pearson_r,
    real_measures,
    selection_score,
    supervisor_measures,
    synthetic_measures,
)


def _joint(seed: int) -> EvalJoint:
    """A synthetic overlap of two textured rectangular bones on a smooth background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:48, 0:48]
    background = (0.2 + 0.05 * seed + 0.002 * rows).astype(np.float32)
    upper = (rows >= 4) & (rows < 22) & (cols >= 12) & (cols < 36)
    lower = (rows >= 26) & (rows < 44) & (cols >= 10) & (cols < 38)
    texture = 0.6 + 0.1 * rng.random((48, 48))
    image = np.where(upper | lower, texture, background).astype(np.float32)
    made = synthesize_with_shifts(image, upper, lower, Shifts(4, 4), background)
    return EvalJoint(
        f"joint{seed}", made.image, made.masks, background, made.overlap_px, made.layers, made.k
    )


def _output(layers: np.ndarray, k: float) -> SeparationResult:
    return SeparationResult(torch.from_numpy(layers), torch.tensor(k), torch.zeros(1, 48, 48))


def test_pearson_r_by_hand_and_undefined_for_a_constant() -> None:
    assert pearson_r([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson_r([1, 2, 3], [5, 5, 5]) is None


def test_true_layers_score_the_cap_and_a_seam_ratio_of_one() -> None:
    joints = [_joint(seed) for seed in range(3)]
    outputs = [_output(j.true_layers, j.true_k) for j in joints]  # type: ignore[arg-type]
    row = synthetic_measures(joints, outputs, "val_synthetic")
    assert row["val_synthetic_layer_psnr"] == 100.0
    assert row["val_synthetic_detail_psnr"] == 100.0
    assert row["val_synthetic_seam_ratio"] == pytest.approx(1.0)
    assert row["val_synthetic_k_r"] == pytest.approx(1.0)


def test_a_darker_patch_in_the_overlap_shows_as_a_seam() -> None:
    joints = [_joint(seed) for seed in range(3)]
    outputs = []
    for joint in joints:
        assert joint.true_layers is not None
        overlap = joint.masks.sum(axis=0) >= 2
        outputs.append(_output(joint.true_layers - 0.1 * overlap, joint.true_k + 0.01))
    row = synthetic_measures(joints, outputs, "val_synthetic")
    assert row["val_synthetic_seam_ratio"] > 1.25
    assert row["val_synthetic_layer_psnr"] == pytest.approx(20.0, abs=0.01)
    # A flat offset is partly not texture: the detail error is smaller than the layer error.
    assert row["val_synthetic_detail_psnr"] > row["val_synthetic_layer_psnr"] + 4


def test_real_measures_of_the_input_itself() -> None:
    joints = [_joint(seed) for seed in range(3)]
    outputs = []
    for joint in joints:
        layers = np.stack([joint.image * mask for mask in joint.masks])
        reconstruction = torch.from_numpy(joint.image[None])
        outputs.append(
            SeparationResult(torch.from_numpy(layers), torch.tensor(0.7), reconstruction)
        )
    row = real_measures(joints, outputs)
    assert row["val_real_overlap_psnr"] == 100.0
    assert row["val_real_outside_psnr"] == 100.0
    assert row["val_real_seam_ratio"] == pytest.approx(1.0)
    assert row["val_real_k_r"] is None  # a constant k follows nothing
    assert 0 < laplace_k(joints[0]) < 1


def test_real_measures_outside_the_overlap_see_only_the_bone_beside_it() -> None:
    joints = [_joint(seed) for seed in range(3)]
    outputs = []
    for joint in joints:
        covered = joint.masks.sum(axis=0)
        # 0.1 brighter where exactly one bone lies, exact in the overlap and outside the bones
        changed = joint.image + 0.1 * (covered == 1)
        layers = np.stack([changed * mask for mask in joint.masks])
        outputs.append(
            SeparationResult(
                torch.from_numpy(layers), torch.tensor(0.7), torch.from_numpy(changed[None])
            )
        )
    row = real_measures(joints, outputs)
    assert row["val_real_outside_psnr"] == pytest.approx(20.0, abs=0.01)
    assert row["val_real_overlap_psnr"] == 100.0


def test_supervisor_measures_are_an_auc_and_a_probability() -> None:
    torch.manual_seed(0)
    supervisor = Supervisor(
        SupervisorConfig(backbone="unet_small", backbone_options={"depth": 2}, scale=2)
    )
    joints = [_joint(seed) for seed in range(3)]
    outputs = [_output(j.image * j.masks, 0.7) for j in joints]
    row = supervisor_measures(supervisor, joints, outputs, joints, outputs, torch.device("cpu"))
    assert 0 <= row["val_supervisor_auc"] <= 1  # type: ignore[operator]
    # These outputs are the identity layers: both AUCs judge the same stacks.
    assert row["val_supervisor_auc_identity"] == row["val_supervisor_auc"]
    truthful = [_output(j.true_layers, 0.7) for j in joints]  # type: ignore[arg-type]
    tied = supervisor_measures(supervisor, joints, truthful, [], [], torch.device("cpu"))
    assert tied["val_supervisor_auc"] == pytest.approx(0.5)  # true against true
    assert tied["val_supervisor_auc_identity"] == row["val_supervisor_auc"]
    assert 0 < row["val_real_verdict"] < 1  # type: ignore[operator]
    assert 0 < row["val_true_verdict"] < 1  # type: ignore[operator]
    assert supervisor.training  # left as it was found


def test_selection_score_by_hand() -> None:
    row = {
        "val_synthetic_layer_psnr": 30.0,
        "val_wide_layer_psnr": 26.0,
        "val_real_overlap_psnr": 40.0,
        "val_synthetic_seam_ratio": 10.0,
        "val_wide_seam_ratio": 1.0,
        "val_real_seam_ratio": 10.0,
        "val_real_verdict": 0.4,
        "val_true_verdict": 0.8,
    }
    # 30 + 26 - 20 * log10(10) - 0 + 40 / 2 - 20 * log10(10) + 5 * 0.4 / 0.8
    assert selection_score(row) == pytest.approx(38.5)
    assert selection_score({**row, "val_wide_seam_ratio": None}) is None
    assert selection_score({**row, "val_real_seam_ratio": None}) is None
    # Real seams below the input's own edge cost nothing; the verdict ratio stops at 1.
    assert selection_score({**row, "val_real_seam_ratio": 0.5}) == pytest.approx(58.5)
    assert selection_score({**row, "val_real_verdict": 0.9}) == pytest.approx(41.0)
    assert selection_score({**row, "val_true_verdict": None}) == pytest.approx(36.0)
    assert calibrated_verdict({"val_real_verdict": 0.3, "val_true_verdict": 0.0}) == 0.0
    assert not math.isnan(selection_score({**row, "val_synthetic_seam_ratio": 0.1}) or 0)
    # The bone beside the overlap: nothing above 40 dB, dB for dB below it.
    assert selection_score({**row, "val_real_outside_psnr": 55.0}) == pytest.approx(38.5)
    assert selection_score({**row, "val_real_outside_psnr": 33.0}) == pytest.approx(31.5)


def test_a_phase2_epoch_can_win_but_not_by_giving_up_the_synthetic_layers() -> None:
    phase1 = {
        "val_synthetic_layer_psnr": 28.0,
        "val_wide_layer_psnr": 22.0,
        "val_real_overlap_psnr": 32.0,
        "val_synthetic_seam_ratio": 1.6,
        "val_wide_seam_ratio": 1.6,
        "val_real_seam_ratio": 2.6,
        "val_real_verdict": 0.5,
        "val_true_verdict": 0.5,
    }
    # Weaker seams on the real joints (2.6 -> 2.0, +2.3 dB) for 0.5 dB of synthetic layer PSNR.
    phase2 = {**phase1, "val_synthetic_layer_psnr": 27.5, "val_real_seam_ratio": 2.0}
    assert selection_score(phase2) > selection_score(phase1)  # type: ignore[operator]
    # The same for 3 dB of synthetic layer PSNR loses.
    worse = {**phase2, "val_synthetic_layer_psnr": 25.0}
    assert selection_score(worse) < selection_score(phase1)  # type: ignore[operator]
