"""``blsnode process FILE --out DIR``: JSON report, files on disk, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from worker_testing import TEST_MODEL_VERSION, promote_blsgan, tiny_blsgan

from blsnode.cli.main import cli
from worker.pipeline import STAGES


def _run(tmp_path: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "node"), "process", *args])


def test_json_report_names_every_written_object(dx_left: Path, tmp_path: Path) -> None:
    promote_blsgan(tmp_path / "node" / "models")
    result = _run(tmp_path, str(dx_left), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["version"] == TEST_MODEL_VERSION
    assert report["models"]["blsgan"]["name"] == "tiny"
    assert report["models"]["device"] == "cpu"
    assert [hand["side"] for hand in report["hands"]] == ["L"]
    joints = report["hands"][0]["joints"]
    assert [joint["name"] for joint in joints] == ["MCP1", "MCP2", "MCP3", "MCP4", "MCP5"]
    assert all(0 < joint["k"] <= 1 for joint in joints)
    assert set(report["timings_s"]) == {*STAGES, "total"}
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(Path(o["path"]).name for o in report["outputs"]) == written
    assert len(written) == 18
    for output in report["outputs"]:
        header = dcmread(output["path"], stop_before_pixels=True)
        assert header.SOPInstanceUID == output["sop_instance_uid"]
        assert Path(output["path"]).name == f"{output['kind']}_{output['sop_instance_uid']}.dcm"


def test_text_report_and_an_explicit_model(dx_left: Path, tmp_path: Path) -> None:
    model = tiny_blsgan(tmp_path / "given.pt", version="7.7.7")
    result = _run(tmp_path, str(dx_left), "--out", str(tmp_path / "out"), "--model", str(model))
    assert result.exit_code == 0, result.output
    assert "hand L" in result.stdout
    assert "18 objects written" in result.stdout
    assert "version 7.7.7" in result.stdout


def test_a_non_hand_image_is_a_clear_error(blank_dx: Path, tmp_path: Path) -> None:
    promote_blsgan(tmp_path / "node" / "models")
    result = _run(tmp_path, str(blank_dx), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1
    assert "no hand found" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_without_a_promoted_model_the_message_says_what_to_do(
    dx_left: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLSNODE_MODELS__USE_SHIPPED_WEIGHTS", "false")
    result = _run(tmp_path, str(dx_left), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "model is promoted" in result.stderr and "turned off" in result.stderr
    assert "blsnode models promote" in result.stderr


def test_bad_arguments_are_usage_errors(dx_left: Path, tmp_path: Path) -> None:
    result = _run(tmp_path, str(dx_left), "--out", str(tmp_path / "o"), "--device", "quantum")
    assert result.exit_code == 2 and "unknown torch device" in result.stderr
    assert _run(tmp_path, str(dx_left)).exit_code == 2  # --out missing
    assert _run(tmp_path, str(tmp_path / "none.dcm"), "--out", "o").exit_code == 2
