"""Checkpoint round trip: bit-exact in fp32, close in fp16, refuses foreign files."""

from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from blsgan_core.checkpoint import Checkpoint, atomic_file, load_checkpoint, save_checkpoint
from blsgan_core.networks.unet import UNet, UNetConfig


def _checkpoint() -> tuple[UNet, Checkpoint]:
    torch.manual_seed(0)
    config = UNetConfig(base_channels=8, depth=2)
    net = UNet(config)
    return net, Checkpoint(
        kind="segmenter",
        version="0.1.0",
        config={"unet": asdict(config)},
        state={"net": net.state_dict()},
        metadata={"metrics": {"dice": 0.5}},
    )


def test_round_trip_rebuilds_an_identical_network(tmp_path: Path) -> None:
    net, checkpoint = _checkpoint()
    save_checkpoint(tmp_path / "m.pt", checkpoint)
    loaded = load_checkpoint(tmp_path / "m.pt", expected_kind="segmenter")
    rebuilt = UNet(UNetConfig(**loaded.config["unet"]))
    rebuilt.load_state_dict(loaded.state["net"])
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(net.eval()(x), rebuilt.eval()(x))
    assert loaded.metadata == {"metrics": {"dice": 0.5}}
    assert loaded.version == "0.1.0"


def test_half_precision_is_smaller_and_close(tmp_path: Path) -> None:
    net, checkpoint = _checkpoint()
    save_checkpoint(tmp_path / "full.pt", checkpoint)
    save_checkpoint(tmp_path / "half.pt", checkpoint, half=True)
    assert (tmp_path / "half.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    rebuilt = UNet(net.config)
    rebuilt.load_state_dict(load_checkpoint(tmp_path / "half.pt").state["net"])
    x = torch.rand(1, 1, 16, 16)
    assert torch.allclose(net.eval()(x), rebuilt.eval()(x), atol=1e-2)


def test_refuses_missing_foreign_and_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format"):
        load_checkpoint(tmp_path / "other.pt")
    _, checkpoint = _checkpoint()
    save_checkpoint(tmp_path / "m.pt", checkpoint)
    with pytest.raises(ValueError, match="not 'blsgan'"):
        load_checkpoint(tmp_path / "m.pt", expected_kind="blsgan")


def test_atomic_file_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "card.json"
    with atomic_file(path, text=True) as handle:
        handle.write("old")
    with pytest.raises(RuntimeError, match="disk"), atomic_file(path, text=True) as handle:
        handle.write("new, torn")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["card.json"]  # no temp file left
    with atomic_file(path) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"
