"""The segmenter's full-resolution refiner: a no-op when added, saved and loaded with it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from blsgan_core.segment import Segmenter
from blsgan_core.segment.model import load_segmenter, save_segmenter
from trainer.frontend.train_segmenter import TINY, initialise


def _crops() -> torch.Tensor:
    return torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(0))


def test_a_refiner_added_to_a_trained_unet_changes_nothing_until_trained() -> None:
    torch.manual_seed(0)
    coarse = Segmenter(replace(TINY, crop_size=64)).eval()
    refined = Segmenter(replace(TINY, crop_size=64, refine_channels=8)).eval()
    initialise(refined, coarse)
    with torch.no_grad():
        assert torch.equal(refined(_crops()), coarse(_crops()))
        assert refined.refiner is not None
        torch.nn.init.normal_(refined.refiner.head.weight)
        assert not torch.allclose(refined(_crops()), coarse(_crops()))


def test_the_refiner_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Segmenter(replace(TINY, crop_size=64, refine_channels=8)).eval()
    assert model.refiner is not None
    torch.nn.init.normal_(model.refiner.head.weight)
    save_segmenter(tmp_path / "s.pt", model, "segmenter-test", {})
    loaded = load_segmenter(tmp_path / "s.pt")
    assert loaded.config.refine_channels == 8
    with torch.no_grad():
        assert torch.allclose(loaded(_crops()), model(_crops()), atol=1e-6)


def test_a_checkpoint_without_a_refiner_loads_as_before() -> None:
    shipped = load_segmenter()
    assert shipped.config.refine_channels == 0 and shipped.refiner is None
