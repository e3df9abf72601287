"""Localiser and segmenter networks: shapes, configs, checkpoint round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from blsgan_core.joints.model import Localiser, LocaliserConfig, load_localiser, save_localiser
from blsgan_core.networks.unet import UNetConfig
from blsgan_core.segment import Segmenter, SegmenterConfig, load_segmenter, segment, segment_masks
from blsgan_core.segment.model import save_segmenter
from blsgan_core.shipped import shipped_weights


def test_localiser_stage_shapes() -> None:
    model = Localiser(LocaliserConfig()).eval()
    with torch.no_grad():
        assert model.detector(torch.rand(2, 1, 128, 128)).shape == (2, 2, 128, 128)
        assert model.landmarks(torch.rand(1, 1, 128, 128)).shape == (1, 10, 128, 128)
        assert model.refiner(torch.rand(3, 1, 64, 64)).shape == (3, 1, 64, 64)
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters * 2 < 20e6  # fp16 weights stay well under 20 MB


def test_localiser_config_is_validated_and_round_trips() -> None:
    config = LocaliserConfig(detector_size=96)
    assert LocaliserConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="detector input size 100"):
        LocaliserConfig(detector_size=100)
    with pytest.raises(ValueError, match="refiner needs 1 input and 1 output"):
        LocaliserConfig(refiner=UNetConfig(out_channels=2))
    with pytest.raises(ValueError, match="output"):
        LocaliserConfig(landmarks=UNetConfig(out_channels=3))


def test_localiser_checkpoint_round_trip_in_fp16(tmp_path: Path) -> None:
    small = UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2, max_channels=16)
    config = LocaliserConfig(
        detector=small,
        landmarks=UNetConfig(in_channels=1, out_channels=10, base_channels=8, depth=2),
        refiner=UNetConfig(in_channels=1, out_channels=1, base_channels=8, depth=2),
        detector_size=32,
        landmark_size=32,
        patch_size=16,
    )
    model = Localiser(config).eval()
    save_localiser(tmp_path / "l.pt", model, "test-1", {"note": "x"}, half=True)
    loaded = load_localiser(tmp_path / "l.pt")
    assert loaded.version == "test-1" and loaded.metadata == {"note": "x"}
    assert loaded.config == config and not loaded.training
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.landmarks(x), model.landmarks(x), atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match="segmenter"):
        load_segmenter(tmp_path / "l.pt")


def test_segmenter_shapes_at_crop_size_and_probabilities(tmp_path: Path) -> None:
    model = Segmenter(SegmenterConfig()).eval()
    assert model(torch.rand(2, 1, 256, 256)).shape == (2, 2, 256, 256)
    tiny = Segmenter(
        SegmenterConfig(
            unet=UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2),
            input_size=32,
            crop_size=64,
        )
    ).eval()
    save_segmenter(tmp_path / "s.pt", tiny, "t", {}, half=True)
    loaded = load_segmenter(tmp_path / "s.pt")
    crops = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32) * 900.0
    probabilities = segment(crops, loaded)
    assert probabilities.shape == (3, 2, 64, 64)
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert segment_masks(crops[0], loaded).shape == (1, 2, 64, 64)
    with pytest.raises(ValueError, match="64x64"):
        segment(np.zeros((1, 32, 32), np.float32), loaded)
    with pytest.raises(ValueError, match="output channels"):
        SegmenterConfig(unet=UNetConfig(out_channels=3))


def test_shipped_weights_are_found_by_name_only() -> None:
    with pytest.raises(ValueError, match="not a shipped weights file"):
        shipped_weights("../secret.pt")
    with pytest.raises(ValueError, match="ships no weights"):
        shipped_weights("nonexistent.pt")
