"""Manifest validation on the real data and on deliberately broken copies; joint splits."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blsgan_core.data import (
    JointRecord,
    ManifestContents,
    load_sample,
    read_manifests,
    split_by_case,
)


def test_real_manifest_counts_and_the_four_same_bone_records(
    joint_manifest: ManifestContents,
) -> None:
    assert len(joint_manifest.records) + len(joint_manifest.rejected) == 1194
    assert len(joint_manifest.rejected) == 4
    assert all("same bone" in r.reason for r in joint_manifest.rejected)
    assert {r.case for r in joint_manifest.rejected} == {
        "00307_R_5",
        "00086_R_11",
        "00314_R_13",
        "00111_L_5",
    }
    assert len(joint_manifest.cases) == 371
    # Genuine pairs stay far below the threshold: the gap the threshold sits in.
    assert max(r.mask_iou for r in joint_manifest.records) < 0.2
    assert sum(r.overlap_px >= 20 for r in joint_manifest.records) == 514


def test_load_sample_gives_unit_range_grey_and_boolean_masks(
    overlapping_joints: list[JointRecord],
) -> None:
    record = overlapping_joints[0]
    sample = load_sample(record)
    assert sample.image.shape == (256, 256) and sample.image.dtype == np.float32
    assert sample.image.min() >= 0 and sample.image.max() <= 1
    assert sample.upper.dtype == np.bool_ and sample.masks.shape == (2, 256, 256)
    assert int((sample.upper & sample.lower).sum()) == sample.overlap_px == record.overlap_px
    assert sample.background is not None and sample.background.shape == (256, 256)
    # The finger points up: the upper bone lies above the lower one.
    assert np.nonzero(sample.upper)[0].mean() < np.nonzero(sample.lower)[0].mean()


def _copy_records(mcp_joints_dir: Path, target: Path, count: int) -> list[dict[str, object]]:
    records = json.loads((mcp_joints_dir / "manifest.json").read_text())[:count]
    for record in records:
        for key in ("image", "upper", "lower", "background"):
            destination = target / str(record[key])
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(mcp_joints_dir / str(record[key]), destination)
    return records


def test_broken_records_are_rejected_with_their_reason(
    mcp_joints_dir: Path, tmp_path: Path
) -> None:
    records = _copy_records(mcp_joints_dir, tmp_path, 7)
    Image.new("L", (128, 128)).save(tmp_path / str(records[1]["image"]))
    grey = np.full((256, 256), 128, dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / str(records[2]["upper"]))
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(tmp_path / str(records[3]["lower"]))
    (tmp_path / str(records[4]["upper"])).unlink()
    records[5]["overlap_px"] = int(str(records[5]["overlap_px"])) + 1
    records.append(dict(records[0]))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(records))

    contents = read_manifests(manifest)
    reasons = {r.index: r.reason for r in contents.rejected}
    assert [r.image for r in contents.records] == [
        tmp_path / str(records[i]["image"]) for i in (0, 6)
    ]
    assert "128x128, not 256x256" in reasons[1]
    assert "not binary" in reasons[2]
    assert "lower mask is empty" in reasons[3]
    assert "does not exist" in reasons[4]
    assert "overlap_px" in reasons[5]
    assert "already listed" in reasons[7]


def test_several_manifests_are_read_together(mcp_joints_dir: Path, tmp_path: Path) -> None:
    for name, sl in (("a", slice(0, 2)), ("b", slice(2, 4))):
        folder = tmp_path / name
        records = _copy_records(mcp_joints_dir, folder, 4)[sl]
        (folder / "manifest.json").write_text(json.dumps(records))
    contents = read_manifests([tmp_path / "a" / "manifest.json", tmp_path / "b" / "manifest.json"])
    assert len(contents.records) == 4 and not contents.rejected
    assert {r.manifest.parent.name for r in contents.records} == {"a", "b"}
    with pytest.raises(ValueError, match="does not exist"):
        read_manifests(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="JSON list"):
        read_manifests(tmp_path / "bad.json")


def test_split_is_joint_disjoint_seeded_and_order_free(joint_manifest: ManifestContents) -> None:
    records = list(joint_manifest.records)
    train, validation = split_by_case(records, validation_fraction=0.2, seed=3)
    assert len(train) + len(validation) == len(records)
    assert not {r.case for r in train} & {r.case for r in validation}
    assert len({r.case for r in validation}) == round(0.2 * 371)
    again = split_by_case(list(reversed(records)), validation_fraction=0.2, seed=3)[1]
    assert {r.image for r in again} == {r.image for r in validation}
    other = split_by_case(records, validation_fraction=0.2, seed=4)[1]
    assert {r.case for r in other} != {r.case for r in validation}
    with pytest.raises(ValueError, match="validation_fraction"):
        split_by_case(records, validation_fraction=1.0)
