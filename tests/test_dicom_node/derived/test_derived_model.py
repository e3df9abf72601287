"""The result dataclasses refuse malformed worker output before any DICOM is built."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dicom_node.derived.model import (
    HandResult,
    Joint,
    JointResult,
    JointSpace,
    Layer,
    LengthUnit,
    ModelInfo,
    RadiographResult,
    ReconstructionError,
    Side,
    SpacingSource,
)

ERROR = ReconstructionError(mse=1e-4, ssim=0.98, psnr=40.0)


def _joint(
    joint: Joint = Joint.MCP2, shape: tuple[int, int] = (60, 40), **changes: object
) -> JointResult:
    upper = np.zeros(shape, bool)
    upper[10:30, 10:30] = True
    lower = np.zeros(shape, bool)
    lower[25:45, 12:28] = True
    crop = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    values: dict[str, object] = {
        "joint": joint,
        "upper_mask": upper,
        "lower_mask": lower,
        "crop": crop,
        "upper_layer": crop * 0.5,
        "lower_layer": crop * 0.25,
        "reconstruction": crop,
        "k": 0.75,
        "error": ERROR,
    }
    values.update(changes)
    return JointResult(**values)  # type: ignore[arg-type]


def test_overlap_is_derived_from_the_masks() -> None:
    joint = _joint()
    assert joint.overlap_area_px == 5 * 16  # rows 25-29, columns 12-27
    assert np.array_equal(joint.overlap_mask, joint.upper_mask & joint.lower_mask)
    assert joint.layer(Layer.LOWER) is joint.lower_layer
    assert joint.grid_shape == (60, 40)
    # Rows 10-44, columns 10-29: the box of both bones, where the overlap is looked for.
    assert joint.window == (slice(10, 45), slice(10, 30))
    empty = np.zeros((60, 40), bool)
    nothing = _joint(upper_mask=empty, lower_mask=empty)
    assert nothing.window == (slice(0, 0), slice(0, 0)) and nothing.overlap_area_px == 0
    assert not nothing.overlap_mask.any() and nothing.overlap_mask.shape == (60, 40)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"upper_mask": np.zeros((60, 40), np.uint8)}, TypeError, "bool"),
        ({"lower_mask": np.zeros((61, 40), bool)}, ValueError, "shapes differ"),
        ({"upper_layer": np.zeros((32, 32), np.float32)}, ValueError, "shape"),
        ({"reconstruction": np.full((64, 64), 1.5, np.float32)}, ValueError, r"\[0, 1\]"),
        ({"crop": np.zeros((64, 64), np.uint8)}, TypeError, "floating"),
        ({"k": 0.0}, ValueError, "k must be"),
        ({"k": float("nan")}, ValueError, "k must be"),
        ({"joint": "MCP9"}, ValueError, "MCP9"),
    ],
)
def test_joint_validation(changes: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _joint(**changes)  # type: ignore[arg-type]


def test_reconstruction_error_validation() -> None:
    with pytest.raises(ValueError, match="psnr"):
        ReconstructionError(mse=0.0, ssim=1.0, psnr=float("inf"))
    with pytest.raises(ValueError, match="ssim"):
        ReconstructionError(mse=0.1, ssim=1.5, psnr=10.0)
    with pytest.raises(ValueError, match="mse"):
        ReconstructionError(mse=-0.1, ssim=0.5, psnr=10.0)


def test_model_info_validation() -> None:
    with pytest.raises(ValueError, match="version"):
        ModelInfo(name="bls", version=" ")
    with pytest.raises(ValueError, match="64"):
        ModelInfo(name="x" * 65, version="1")


def test_hands_and_radiograph_validation() -> None:
    with pytest.raises(ValueError, match="twice"):
        HandResult(Side.LEFT, (_joint(), _joint()))
    with pytest.raises(ValueError, match="different grids"):
        HandResult(Side.LEFT, (_joint(Joint.MCP2), _joint(Joint.MCP3, shape=(50, 40))))
    with pytest.raises(ValueError, match="no joints"):
        HandResult(Side.LEFT, ())
    left = HandResult(Side.LEFT, (_joint(Joint.MCP3), _joint(Joint.MCP1)))
    assert [j.joint for j in left.joints] == [Joint.MCP1, Joint.MCP3]
    right = HandResult(Side.RIGHT, (_joint(),))
    model = ModelInfo("bls", "1")
    result = RadiographResult(model, (left, right))
    assert [h.side for h in result.hands] == [Side.RIGHT, Side.LEFT]
    assert [(s, j.joint) for s, j in result.joints()][:2] == [
        (Side.RIGHT, Joint.MCP2),
        (Side.LEFT, Joint.MCP1),
    ]
    with pytest.raises(ValueError, match="side appears twice"):
        RadiographResult(model, (left, left))
    with pytest.raises(ValueError, match="at least one hand"):
        RadiographResult(model, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.model = model  # type: ignore[misc]


def test_joint_space_refuses_inconsistent_numbers_and_units() -> None:
    space = JointSpace(-0.4, 0.2, 0.4, "mm", "ImagerPixelSpacing")
    assert space.unit is LengthUnit.MILLIMETER and space.spacing.caveat is not None
    assert SpacingSource.PIXEL_SPACING.caveat is None
    with pytest.raises(ValueError, match="does not fit"):
        JointSpace(1.0, 1.0, 0.0, LengthUnit.PIXELS, SpacingSource.PIXEL_SPACING)
    with pytest.raises(ValueError, match="does not fit"):
        JointSpace(1.0, 1.0, 0.0, LengthUnit.MILLIMETER, SpacingSource.NONE)
    with pytest.raises(ValueError, match="inconsistent"):
        JointSpace(2.0, 1.0, 0.0, LengthUnit.PIXELS, SpacingSource.NONE)
    with pytest.raises(ValueError, match="finite"):
        JointSpace(float("nan"), 1.0, 0.0, LengthUnit.PIXELS, SpacingSource.NONE)
