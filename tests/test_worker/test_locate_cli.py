"""``blsnode locate``: JSON of a real radiograph, clear refusal of what is not a hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from blsnode.cli.main import cli
from trainer.frontend.hand_data import read_landmarks_csv, select_split


def test_locate_prints_hands_as_json(tmp_path: Path, hand_radiographs_dir: Path) -> None:
    record = select_split(read_landmarks_csv(hand_radiographs_dir / "landmarks.csv"), "val")[0]
    # The same radiograph as a 16-bit PNG: another input format than the atlas' JPEG.
    grey = np.asarray(Image.open(record.file).convert("L"), np.uint16) * 257
    png = tmp_path / "hand.png"
    Image.fromarray(grey).save(png)
    result = CliRunner().invoke(cli, ["locate", str(png), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["shape"] == list(grey.shape)
    [hand] = data["hands"]
    assert hand["side"] == "L" and 0.0 <= hand["score"] <= 1.0
    assert [j["name"] for j in hand["joints"]] == ["MCP1", "MCP2", "MCP3", "MCP4", "MCP5"]
    for joint in hand["joints"]:
        assert set(joint) == {"name", "x", "y", "axis_deg", "score"}
        assert 0 <= joint["x"] < grey.shape[1] and 0 <= joint["y"] < grey.shape[0]
        assert -180.0 < joint["axis_deg"] <= 180.0 and 0.0 <= joint["score"] <= 1.0
    # The middle finger of an atlas hand points roughly up.
    assert abs(hand["joints"][2]["axis_deg"]) < 30
    text = CliRunner().invoke(cli, ["locate", str(record.file)])
    assert text.exit_code == 0 and "MCP3" in text.output and "side L" in text.output


def test_locate_refuses_an_image_without_a_hand(tmp_path: Path) -> None:
    noise = (np.random.default_rng(1).random((600, 500)) * 255).astype(np.uint8)
    path = tmp_path / "noise.jpg"
    Image.fromarray(noise).save(path)
    result = CliRunner().invoke(cli, ["locate", str(path), "--json"])
    assert result.exit_code == 1
    assert "no hand found" in result.output
    assert "Traceback" not in result.output and result.stdout.count("{") == 0


def test_locate_refuses_unreadable_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    result = CliRunner().invoke(cli, ["locate", str(text)])
    assert result.exit_code == 1 and "neither DICOM nor an image" in result.output
    missing = CliRunner().invoke(cli, ["locate", str(tmp_path / "nope.png")])
    assert missing.exit_code == 1 and "is not a file" in missing.output
    image = tmp_path / "grey.png"
    Image.fromarray(np.full((200, 200), 90, np.uint8)).save(image)
    bad_model = CliRunner().invoke(cli, ["locate", str(image), "--model", str(text)])
    assert bad_model.exit_code == 1 and "not a readable checkpoint" in bad_model.output
