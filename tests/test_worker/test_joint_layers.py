"""The stored joint layers a follow-up registers: round trip, absent and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worker.joint_layers import StoredJoint, layers_file, load_joint_layers, save_joint_layers


def test_layers_come_back_as_stored(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((2, 32, 32)) > 0.5
    joint = StoredJoint((rng.random((2, 32, 32)) * masks).astype(np.float32), masks, 0.12)
    path = layers_file(tmp_path / "layers", "1.2.3")
    save_joint_layers(path, {("L", "MCP2"): joint})
    found = load_joint_layers(path)
    assert list(found) == [("L", "MCP2")]
    back = found[("L", "MCP2")]
    assert np.array_equal(back.masks, masks) and back.scale == 0.12
    # float16 keeps grey values to 1/2048.
    assert np.abs(back.layers - joint.layers).max() < 1e-3
    assert [p.name for p in path.parent.iterdir()] == ["1.2.3.npz"]  # no temporary left


def test_missing_broken_and_bad_inputs(tmp_path: Path) -> None:
    assert load_joint_layers(tmp_path / "none.npz") == {}
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="unreadable"):
        load_joint_layers(broken)
    with pytest.raises(ValueError, match="SOP Instance UID"):
        layers_file(tmp_path, "../escape")
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        StoredJoint(np.zeros((3, 4, 4), np.float32), np.zeros((3, 4, 4), bool), 1.0)
    with pytest.raises(ValueError, match="scale"):
        StoredJoint(np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4), bool), 0.0)
