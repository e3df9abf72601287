"""``blsnode separate`` end to end on a real joint with a small random checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from blsgan_core.data import read_grey, read_manifests, read_mask
from blsgan_core.harmonise import harmonise
from blsgan_core.model import BLSGANConfig, BLSGANModel, save_model
from blsgan_core.networks.generator import GeneratorConfig
from blsgan_core.networks.reconstructor import ReconstructorConfig
from blsgan_core.networks.supervisor import SupervisorConfig
from blsgan_core.registry import ModelRegistry
from blsnode.cli.main import cli
from worker.joint_separation import JointSeparation


@pytest.fixture(scope="module")
def joint(mcp_joints_dir: Path) -> dict[str, Path]:
    """The first real joint of the manifest whose bones overlap."""
    records = json.loads((mcp_joints_dir / "manifest.json").read_text())
    record = next(r for r in records if r["overlap_px"] >= 100)
    return {key: mcp_joints_dir / record[key] for key in ("image", "upper", "lower")}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    unet = {"base_channels": 8, "depth": 3}
    config = BLSGANConfig(
        generator=GeneratorConfig(backbone_options=unet),
        reconstructor=ReconstructorConfig(channels=(8, 8), convs_per_stage=(1, 1)),
        supervisor=SupervisorConfig(backbone_options=unet),
    )
    path = tmp_path / "tiny.pt"
    save_model(path, BLSGANModel(config), "0.0.1-test")
    return path


def _args(joint: dict[str, Path], out: Path) -> list[str]:
    return [
        "separate",
        str(joint["image"]),
        "--upper",
        str(joint["upper"]),
        "--lower",
        str(joint["lower"]),
        "--out",
        str(out),
    ]


def test_writes_layers_and_reconstruction_and_reports_metrics(
    joint: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    args = [*_args(joint, tmp_path / "out"), "--model", str(checkpoint), "--json"]
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "node"), *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == "0.0.1-test"
    assert 0.05 < data["k"] < 1
    stem = joint["image"].stem
    upper = np.asarray(Image.open(tmp_path / "out" / f"{stem}_upper.png"))
    recon = np.asarray(Image.open(tmp_path / "out" / f"{stem}_reconstruction.png")) / 255.0
    assert upper.shape == (256, 256) and upper.dtype == np.uint8
    masks = read_mask(joint["upper"]), read_mask(joint["lower"])
    assert not upper[~masks[0]].any()
    bones = masks[0] | masks[1]
    # The metrics compare with the crop as the networks saw it: harmonised.
    error = float(np.mean((recon - harmonise(read_grey(joint["image"])))[bones] ** 2))
    assert data["mse"] == pytest.approx(error, rel=0.05, abs=1e-4)  # the PNG is 8-bit
    assert data["psnr"] == pytest.approx(10 * np.log10(1 / data["mse"]))
    assert -1 <= data["ssim"] <= 1


def test_uses_the_promoted_model_and_prints_text(
    joint: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    registry = ModelRegistry(tmp_path / "node" / "models")
    registry.register(checkpoint, "tiny")
    registry.promote("tiny")
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "node"), *_args(joint, tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("k ")
    assert "version 0.0.1-test" in result.stdout


def test_without_any_model_fails_with_a_clear_message(
    joint: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLSNODE_MODELS__USE_SHIPPED_WEIGHTS", "false")
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "node"), *_args(joint, tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "no BLS-GAN model is promoted" in result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_unusable_inputs_are_errors_not_tracebacks(
    joint: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    small = tmp_path / "small.png"
    Image.new("L", (64, 64)).save(small)
    args = _args(joint, tmp_path / "o")
    args[args.index("--upper") + 1] = str(small)
    result = CliRunner().invoke(cli, [*args, "--model", str(checkpoint)])
    assert result.exit_code == 1 and "differ in size" in result.stderr
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    result = CliRunner().invoke(cli, [*_args(joint, tmp_path / "o"), "--model", str(junk)])
    assert result.exit_code == 1 and "not a readable checkpoint" in result.stderr
    result = CliRunner().invoke(cli, [*_args(joint, tmp_path / "o")[:-2]])
    assert result.exit_code == 2


def test_report_is_strict_json_even_for_an_exact_reconstruction(tmp_path: Path) -> None:
    report = JointSeparation(
        tmp_path / "m.pt",
        "1",
        0.75,
        0.0,
        1.0,
        float("inf"),
        tmp_path / "u",
        tmp_path / "l",
        tmp_path / "r",
    )
    data = report.as_dict()
    assert data["psnr"] is None and data["model"] == str(tmp_path / "m.pt")
    json.loads(json.dumps(data, allow_nan=False))


def test_without_a_promotion_the_shipped_trained_model_separates(
    joint: dict[str, Path], tmp_path: Path
) -> None:
    shipped = ModelRegistry(tmp_path / "empty").promoted("blsgan")
    assert shipped is not None and shipped.shipped
    args = [*_args(joint, tmp_path / "o"), "--json"]
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "node"), *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == shipped.version
    # The shipped model reconstructs this real joint at 39.6 dB (43.8 dB on average over
    # held-out joints, see its model card); a model loaded wrongly (weights, config) does not.
    assert data["psnr"] > 33 and data["ssim"] > 0.9


@pytest.fixture(scope="module")
def manifest(mcp_joints_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real joints (two overlapping, one not) and one known annotation error."""
    raw = json.loads((mcp_joints_dir / "manifest.json").read_text())
    chosen = [r for r in raw if r["overlap_px"] >= 100][:2] + [
        r for r in raw if r["overlap_px"] == 0
    ][:1]
    bad = read_manifests(mcp_joints_dir / "manifest.json").rejected[0]
    chosen.append(next(r for r in raw if r["image"] == bad.image))
    entries = [
        {
            k: str(mcp_joints_dir / v) if k in ("image", "upper", "lower") else v
            for k, v in r.items()
        }
        for r in chosen
    ]
    for entry in entries:
        entry.pop("background", None)
    path = tmp_path_factory.mktemp("manifest") / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def test_manifest_form_writes_three_pngs_and_one_line_per_record(
    manifest: Path, checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["separate", "--manifest", str(manifest), "--out", str(out), "--model", str(checkpoint)]
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "node"), *args])
    # The annotation error cannot be separated: its line says why, and the exit status too.
    assert result.exit_code == 1 and "1 of 4 records could not be separated" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [json.loads(x) for x in (out / "separations.jsonl").read_text().splitlines()]
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 1 and "same bone" in errors[0]["error"]
    entries = json.loads(manifest.read_text())
    done = [line for line in lines if "error" not in line]
    assert [line["image"] for line in done] == [e["image"] for e in entries[:3]]
    for line, entry in zip(done, entries, strict=False):
        assert line["masks"] == "annotated" and line["overlap_px"] == entry["overlap_px"]
        assert 0 < line["k"] <= 1 and line["model"] == "0.0.1-test"
        stem = Path(entry["image"]).stem
        for suffix, key in (("upper", "upper_layer"), ("lower", "lower_layer")):
            layer = np.asarray(Image.open(out / f"{stem}_{suffix}.png"))
            assert line[key] == str(out / f"{stem}_{suffix}.png")
            assert layer.shape == (256, 256) and not layer[~read_mask(Path(entry[suffix]))].any()
        assert (out / f"{stem}_reconstruction.png").is_file()


def test_manifest_form_with_the_segmenters_masks(
    manifest: Path, checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["separate", "--manifest", str(manifest), "--out", str(out), "--masks", "predicted"]
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "node"), *args, "--model", str(checkpoint)]
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    done = [line for line in lines if "error" not in line]
    assert len(done) == 3 and all(line["masks"] == "predicted" for line in done)
    entries = json.loads(manifest.read_text())
    # The segmenter finds both overlapping joints overlapping, and draws its own masks.
    assert all(line["overlap_px"] > 0 for line in done[:2])
    assert [line["overlap_px"] for line in done[:2]] != [e["overlap_px"] for e in entries[:2]]
    for line in done:
        upper = np.asarray(Image.open(line["upper_layer"])) > 0
        assert upper.any()


def test_manifest_form_refuses_colliding_outputs_and_mixed_forms(
    manifest: Path, checkpoint: Path, joint: dict[str, Path], tmp_path: Path
) -> None:
    entries = json.loads(manifest.read_text())
    copy = tmp_path / "copy" / Path(entries[0]["image"]).name  # another file, same stem
    copy.parent.mkdir()
    copy.write_bytes(Path(entries[0]["image"]).read_bytes())
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps([entries[0], {**entries[0], "case": "x", "image": str(copy)}]))
    base = ["separate", "--out", str(tmp_path / "o"), "--model", str(checkpoint)]
    result = CliRunner().invoke(cli, [*base, "--manifest", str(twice)])
    assert result.exit_code == 1 and "share the stem" in result.stderr
    both = CliRunner().invoke(cli, [*base, str(joint["image"]), "--manifest", str(manifest)])
    assert both.exit_code == 2 and "either IMAGE" in both.output
