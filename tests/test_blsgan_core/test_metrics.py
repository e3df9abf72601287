"""Metrics: hand-computed MSE/PSNR, SSIM properties, layer errors, Fréchet distance, FID,
overlap-boundary band, seam ratio, detail PSNR and ROC AUC."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from blsgan_core.metrics import (
    detail_psnr,
    extract_features,
    fid,
    frechet_distance,
    image_metrics,
    layer_errors,
    layer_seam_band,
    load_feature_extractor,
    mse,
    overlap_boundary_band,
    psnr,
    roc_auc,
    seam_ratio,
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


def test_overlap_boundary_band_straddles_the_edge_by_hand() -> None:
    m_cap = np.zeros((8, 8), dtype=bool)
    m_cap[2:6, 2:6] = True
    band = overlap_boundary_band(m_cap)
    ring_inside = m_cap.copy()
    ring_inside[3:5, 3:5] = False  # the 12 outermost overlap pixels
    ring_outside = np.zeros_like(m_cap)
    ring_outside[1, 2:6] = ring_outside[6, 2:6] = True  # 4-connected neighbours: 16
    ring_outside[2:6, 1] = ring_outside[2:6, 6] = True
    assert np.array_equal(band, ring_inside | ring_outside)
    assert np.array_equal(overlap_boundary_band(m_cap, width=1), ring_inside)
    # The image edge is no boundary: an overlap filling the right half has one edge.
    half = np.zeros((8, 8), dtype=bool)
    half[:, 4:] = True
    expected = np.zeros_like(half)
    expected[:, 3:5] = True
    assert np.array_equal(overlap_boundary_band(half), expected)


def test_layer_seam_band_leaves_out_the_bones_own_outline() -> None:
    upper = np.zeros((10, 10), dtype=bool)
    upper[1:9, 1:6] = True
    lower = np.zeros((10, 10), dtype=bool)
    lower[1:9, 4:9] = True
    m_cap = upper & lower  # columns 4 and 5
    band = layer_seam_band(m_cap, upper)
    # In the upper layer the seam is the lower bone's edge, column 4 and its neighbour 3;
    # column 5 is the upper bone's own outline, and rows 1 and 8 lie on it too.
    expected = np.zeros((10, 10), dtype=bool)
    expected[2:8, 3:5] = True
    assert np.array_equal(band, expected)


def test_seam_ratio_by_hand_on_a_step_at_the_overlap_edge() -> None:
    columns = np.arange(8, dtype=np.float64)
    truth = np.tile(0.1 * columns, (8, 1))  # gradient 0.1 everywhere
    overlap = np.zeros((8, 8), dtype=bool)
    overlap[:, 4:] = True
    band = overlap_boundary_band(overlap)  # columns 3 and 4
    assert seam_ratio(truth, truth, band) == pytest.approx(1.0)
    assert seam_ratio(truth + 0.3, truth, band) == pytest.approx(1.0)  # an offset everywhere
    # A patch 0.2 brighter inside the overlap: central differences on columns 3 and 4 see
    # (0.1 * 2 + 0.2) / 2 = 0.2 against the truth's 0.1.
    patched = truth + 0.2 * overlap
    assert seam_ratio(patched, truth, band) == pytest.approx(2.0)
    assert seam_ratio(np.full((8, 8), 0.5), truth, band) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no gradient"):
        seam_ratio(truth, np.full((8, 8), 0.5), band)


def test_detail_psnr_ignores_a_smooth_offset_and_counts_texture() -> None:
    rows, columns = np.mgrid[0:64, 0:64]
    truth = np.full((64, 64), 0.5)
    offset = truth + 0.1  # wrong brightness level, no texture error
    assert psnr(offset, truth) == pytest.approx(20.0)
    assert detail_psnr(offset, truth, None, sigma=3.0) == math.inf
    # A +-0.1 checkerboard survives the local-mean removal almost whole: about 20 dB.
    textured = truth + 0.1 * np.where((rows + columns) % 2 == 0, 1.0, -1.0)
    inner = np.zeros((64, 64), dtype=bool)
    inner[16:48, 16:48] = True
    assert detail_psnr(textured, truth, inner, sigma=3.0) == pytest.approx(20.0, abs=0.05)
    with pytest.raises(ValueError, match="sigma"):
        detail_psnr(textured, truth, inner, sigma=0.0)


def test_roc_auc_by_hand_with_ties() -> None:
    assert roc_auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert roc_auc([1.0], [2.0]) == 0.0
    assert roc_auc([1.0, 2.0], [1.0, 2.0]) == 0.5
    # 0.9 beats all three negatives (3); 0.4 beats 0.1, ties 0.4, loses to 0.5 (1.5): 4.5 / 6.
    assert roc_auc([0.9, 0.4], [0.5, 0.1, 0.4]) == pytest.approx(0.75)


def test_new_measures_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        overlap_boundary_band(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="width"):
        overlap_boundary_band(np.ones((4, 4), dtype=bool), width=0)
    with pytest.raises(ValueError, match="one score per class"):
        roc_auc([], [0.1])
    with pytest.raises(ValueError, match="finite"):
        roc_auc([math.nan], [0.1])
    with pytest.raises(ValueError, match="shape"):
        seam_ratio(np.zeros((4, 4)), np.zeros((4, 5)), np.ones((4, 4), dtype=bool))
