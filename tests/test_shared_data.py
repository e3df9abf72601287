"""The shared data the suite relies on is where the fixture says."""

from pathlib import Path


def test_shared_data_has_both_sets(mcp_joints_dir: Path, hand_radiographs_dir: Path) -> None:
    assert (mcp_joints_dir / "manifest.json").is_file()
    assert (hand_radiographs_dir / "landmarks.csv").is_file()
