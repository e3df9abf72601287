"""Calibrate the ``eq1-offset`` seam step of one model where the truth is known.

    python -m trainer.evaluation.offset_calibration --model runs/x/best.pt --json

``eq1-offset`` (:mod:`blsgan_core.seams`) estimates, for each overlap, one constant
exchange of brightness between the two layers from the overlap's boundary. On synthetic
overlaps of the **training** joints (shifts 1-8 px, hard hidden edges, as the evaluation's
hard synthesis) this finds, per overlap, the further constant that brings the step's
layers closest to the true layers inside the overlap (least squares over both layers),
and reports their mean: the step's bias, which
:attr:`blsgan_core.model.BLSGANConfig.offset_bias` corrects
(``blsnode models export --boundary-blend eq1-offset --offset-bias B``). Why: for the
model shipped in session 17 that further constant averaged +0.015 in log transmittance at
every overlap size, on training and held-out joints alike, so the step left a fixed part
of the offset it is there to remove (docs/training.md, session 18). The held-out joints
are not used: what is fitted here is measured there.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import click
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar

from blsgan_core.data import read_manifests, split_by_case
from blsgan_core.model import load_model
from blsgan_core.seams import exchange_by
from blsgan_core.synthetic import SyntheticConfig
from trainer.datasets import SampleStore
from trainer.evaluation.cli_options import DEFAULT_JOINT_MANIFEST
from trainer.evaluation.separation import (
    EvalJoint,
    model_separator,
    run_separator,
    synthetic_joints,
)

#: Synthetic overlaps of the training joints; another seed than the evaluation's (1234).
CALIBRATION_SEED = 777
#: Overlaps to fit on; the bias's standard error is then about 0.0015.
CALIBRATION_JOINTS = 400
#: Largest constant searched (log transmittance): far beyond any offset seen (0.1).
MAX_CONSTANT = 1.0


@dataclass(frozen=True)
class OffsetCalibration:
    """The mean further constant (``bias``), its spread and standard error over ``joints``."""

    bias: float
    std: float
    standard_error: float
    joints: int


def best_constant(
    layers: NDArray[np.floating], true_layers: NDArray[np.floating], masks: NDArray[np.bool_]
) -> float:
    """The constant ``c`` whose :func:`~blsgan_core.seams.exchange_by` brings ``layers``
    closest to ``true_layers`` inside the overlap (sum of both layers' squared errors)."""
    masks = np.asarray(masks, dtype=bool)
    overlap = masks[0] & masks[1]
    if not overlap.any():
        raise ValueError("the masks do not overlap: no constant to fit")
    truth = np.asarray(true_layers, dtype=np.float64)[:, overlap]

    def error(c: float) -> float:
        moved = exchange_by(layers, masks, c)[:, overlap]
        return float(np.sum((moved - truth) ** 2))

    found = minimize_scalar(
        error, bounds=(-MAX_CONSTANT, MAX_CONSTANT), method="bounded", options={"xatol": 1e-5}
    )
    return float(found.x)


def calibrate(joints: list[EvalJoint], layers: list[NDArray[np.floating]]) -> OffsetCalibration:
    """The bias of the step that produced ``layers`` (one ``(2, H, W)`` per joint)."""
    constants = np.array(
        [
            best_constant(joint_layers, joint.true_layers, joint.masks)
            for joint, joint_layers in zip(joints, layers, strict=True)
            if joint.true_layers is not None
        ]
    )
    if constants.size < 2:
        raise ValueError("need at least two synthetic overlaps to calibrate on")
    std = float(constants.std(ddof=1))
    return OffsetCalibration(
        bias=float(constants.mean()),
        std=std,
        standard_error=std / math.sqrt(constants.size),
        joints=int(constants.size),
    )


def calibrate_model(
    model_path: Path,
    manifests: list[Path],
    *,
    split_seed: int = 0,
    validation_fraction: float = 0.2,
    limit: int = CALIBRATION_JOINTS,
) -> OffsetCalibration:
    """:func:`calibrate` for ``eq1-offset`` without a calibration, on the model's training
    joints (the split the trainer used)."""
    contents = read_manifests(manifests)
    train, _ = split_by_case(
        list(contents.records), validation_fraction=validation_fraction, seed=split_seed
    )
    joints = synthetic_joints(
        train,
        SampleStore(),
        seed=CALIBRATION_SEED,
        options=SyntheticConfig(min_shift=1, max_shift=8, hidden_edge_sigma=0.0),
        limit=limit,
    )
    model = load_model(model_path, device="cpu")
    model.config = replace(model.config, offset_bias=0.0)
    separator = model_separator(model, "cpu", boundary_blend="eq1-offset")
    outputs = run_separator(separator, joints)
    return calibrate(joints, [output.layers.numpy() for output in outputs])


@click.command()
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
)
@click.option(
    "--manifest",
    "manifests",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    default=[DEFAULT_JOINT_MANIFEST],
    show_default=True,
)
@click.option("--seed", "split_seed", default=0, show_default=True, help="Seed of the split.")
@click.option("--limit", default=CALIBRATION_JOINTS, show_default=True, help="Overlaps to fit on.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def main(
    model_path: Path, manifests: tuple[Path, ...], split_seed: int, limit: int, as_json: bool
) -> None:
    """Print the eq1-offset calibration (offset_bias) of MODEL."""
    try:
        found = calibrate_model(model_path, list(manifests), split_seed=split_seed, limit=limit)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(asdict(found)))
    else:
        click.echo(
            f"offset_bias {found.bias:+.4f} (sd {found.std:.4f}, standard error "
            f"{found.standard_error:.4f}, {found.joints} training overlaps)"
        )


if __name__ == "__main__":
    main()
