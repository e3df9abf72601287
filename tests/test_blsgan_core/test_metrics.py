"""Metrics: hand-computed MSE/PSNR, SSIM properties, layer errors, Fréchet distance, FID."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from blsgan_core.metrics import (
    extract_features,
    fid,
    frechet_distance,
    image_metrics,
    layer_errors,
    load_feature_extractor,
    mse,
    psnr,
    ssim,
)


def test_mse_and_psnr_by_hand_with_and_without_mask() -> None:
    first = np.zeros((2, 2))
    second = np.array([[0.1, 0.0], [0.0, 0.3]])
    assert mse(first, second) == pytest.approx((0.01 + 0.09) / 4)
    mask = np.array([[True, False], [False, False]])
    assert mse(first, second, mask) == pytest.approx(0.01)
    assert psnr(first, second, mask) == pytest.approx(20.0)
    assert psnr(first, first) == math.inf


def test_ssim_is_one_for_equal_images_and_matches_skimage_unmasked() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((32, 32))
    noisy = np.clip(image + rng.normal(0, 0.1, image.shape), 0, 1)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image, noisy) == pytest.approx(structural_similarity(image, noisy, data_range=1.0))
    mask = np.zeros((32, 32), dtype=bool)
    mask[:, :16] = True
    half_noisy = image.copy()
    half_noisy[:, 20:] = noisy[:, 20:]
    assert ssim(image, half_noisy, mask) > ssim(image, half_noisy)
    assert set(image_metrics(image, noisy, mask)) == {"mse", "ssim", "psnr"}


def test_layer_errors_only_inside_the_overlap() -> None:
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[0, :3], masks[1, 2:] = True, True  # overlap: row 2
    truth = np.full((2, 4, 4), 0.5) * masks
    layers = truth.copy()
    layers[0, 0] = 0.9  # outside the overlap: ignored
    layers[1, 2] += 0.1
    errors = layer_errors(layers, truth, masks)
    assert errors["layer0_mse"] == 0 and errors["layer0_psnr"] == math.inf
    assert errors["layer1_mse"] == pytest.approx(0.01)
    assert errors["layer1_mae"] == pytest.approx(0.1)
    assert errors["mae"] == pytest.approx(0.05)
    separate = masks.copy()
    separate[1, 2] = False
    with pytest.raises(ValueError, match="do not overlap"):
        layer_errors(layers, truth, separate)


def test_frechet_distance_against_the_closed_form_for_diagonal_gaussians() -> None:
    rng = np.random.default_rng(0)
    first = rng.normal(0, 1, (20000, 2)) * [1.0, 2.0]
    second = rng.normal(0, 1, (20000, 2)) * [3.0, 2.0] + [1.0, 0.0]
    # |mu|^2 + sum(s1 + s2 - 2 sqrt(s1 s2)) = 1 + (1 + 9 - 6) + (4 + 4 - 8) = 5
    assert frechet_distance(first, second) == pytest.approx(5.0, rel=0.05)
    assert frechet_distance(first, first) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(first, second[:, :1])


def _tiny_extractor() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    ).eval()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_fid_with_a_scripted_extractor_supplied_as_a_file(tmp_path: Path) -> None:
    torch.jit.script(_tiny_extractor()).save(str(tmp_path / "extractor.pt"))
    extractor = load_feature_extractor(tmp_path / "extractor.pt")
    images = [torch.rand(8, 1, 16, 16) for _ in range(3)]
    shifted = [batch * 0.5 + 0.5 for batch in images]
    assert extract_features(extractor, images).shape == (24, 4)
    assert fid(extractor, images, images) == pytest.approx(0.0, abs=1e-8)
    assert fid(extractor, images, shifted) > 1e-3
    with pytest.raises(ValueError, match="nothing is downloaded"):
        load_feature_extractor(tmp_path / "inception.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a TorchScript"):
        load_feature_extractor(tmp_path / "junk.pt")


def test_fid_with_an_exported_program(tmp_path: Path) -> None:
    network = _tiny_extractor()
    program = torch.export.export(network, (torch.rand(2, 3, 16, 16),))
    torch.export.save(program, tmp_path / "extractor.pt2")
    extractor = load_feature_extractor(tmp_path / "extractor.pt2")
    images = [torch.rand(2, 1, 16, 16) for _ in range(4)]
    with torch.no_grad():
        expected = network(images[0].expand(-1, 3, -1, -1)).double().numpy()
    assert np.allclose(extract_features(extractor, images[:1]), expected, atol=1e-6)
    assert fid(extractor, images, images) == pytest.approx(0.0, abs=1e-8)


def test_rejects_mismatched_images_and_empty_masks() -> None:
    with pytest.raises(ValueError, match="one shape"):
        mse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        psnr(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2), dtype=bool))
