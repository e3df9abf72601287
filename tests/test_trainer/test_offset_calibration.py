"""The eq1-offset calibration finds the constant that a step's layers miss, on real joints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from blsgan_core.seams import exchange_by
from trainer.evaluation.offset_calibration import best_constant, calibrate, main
from trainer.evaluation.separation import EvalJoint
from trainer.loop import RunResult


def _joint(offset: float) -> tuple[EvalJoint, np.ndarray]:
    """A two-bone joint and layers that miss its true ones by ``offset`` in the overlap."""
    masks = np.zeros((2, 24, 16), dtype=bool)
    masks[0, :14], masks[1, 9:] = True, True
    rows = np.mgrid[:24, :16][0]
    truth = np.stack([np.where(masks[0], 0.4 + 0.01 * rows, 0.0),
                      np.where(masks[1], 0.6 - 0.01 * rows, 0.0)]).astype(np.float32)  # fmt: skip
    joint = EvalJoint("synthetic", truth.max(axis=0), masks, np.zeros((24, 16), np.float32),
                      int((masks[0] & masks[1]).sum()), true_layers=truth)  # fmt: skip
    return joint, exchange_by(truth, masks, -offset)


def test_the_best_constant_undoes_a_known_exchange() -> None:
    joint, layers = _joint(0.07)
    assert best_constant(layers, joint.truth(), joint.masks) == pytest.approx(0.07, abs=1e-4)
    apart = joint.masks.copy()
    apart[1, :14] = False
    with pytest.raises(ValueError, match="do not overlap"):
        best_constant(layers, joint.truth(), apart)


def test_the_calibration_is_the_mean_constant_with_its_spread() -> None:
    pairs = [_joint(offset) for offset in (0.01, 0.03, 0.08)]
    found = calibrate([joint for joint, _ in pairs], [layers for _, layers in pairs])
    assert found.joints == 3
    assert found.bias == pytest.approx(0.04, abs=1e-4)
    assert found.std == pytest.approx(np.std([0.01, 0.03, 0.08], ddof=1), abs=1e-4)
    with pytest.raises(ValueError, match="at least two"):
        calibrate([pairs[0][0]], [pairs[0][1]])


def test_the_command_calibrates_a_trained_model_on_its_training_joints(
    tiny_run: RunResult, small_manifest: Path
) -> None:
    result = CliRunner().invoke(
        main,
        ["--model", str(tiny_run.out / "best.pt"), "--manifest", str(small_manifest),
         "--limit", "3", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["joints"] == 3
    assert abs(found["bias"]) < 1.0 and found["std"] >= 0.0
