"""Image-quality metrics of the paper (MSE, SSIM, PSNR, FID), layer errors, and the
measures a non-separating answer cannot win (detail PSNR, seam ratio, ROC AUC).

All images are float arrays in [0, 1] (``data_range = 1``). Masked variants average only
over a region (the bones, for "reconstruction vs input inside the bones"): MSE and PSNR
over the region's pixels, SSIM as the mean of the local SSIM map over the region (the map
itself uses scikit-image's default 7 x 7 window on the whole image, so context just
outside the region still enters a window, as it does in the unmasked SSIM).

FID needs an Inception network whose weights cannot be downloaded here, and this code
never downloads anything: :func:`load_feature_extractor` takes a TorchScript file the user
supplies (any network mapping images to feature vectors, e.g. an exported Inception-v3
pool3 head); :func:`frechet_distance` does the rest.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import linalg, ndimage, stats
from skimage.metrics import structural_similarity

FloatArray = NDArray[np.floating]
_SSIM_WINDOW = 7  # scikit-image's default
FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]


def _pair(
    first: FloatArray, second: FloatArray, mask: NDArray[np.bool_] | None
) -> NDArray[np.bool_]:
    first, second = np.asarray(first), np.asarray(second)
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(f"need two 2-D images of one shape, got {first.shape} and {second.shape}")
    if mask is None:
        return np.ones(first.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != first.shape:
        raise ValueError(f"mask {mask.shape} does not match the images {first.shape}")
    if not mask.any():
        raise ValueError("mask is empty: nothing to measure")
    return mask


def mse(first: FloatArray, second: FloatArray, mask: NDArray[np.bool_] | None = None) -> float:
    """Mean squared error, over ``mask`` if given."""
    region = _pair(first, second, mask)
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    return float(np.mean(difference[region] ** 2))


def psnr(first: FloatArray, second: FloatArray, mask: NDArray[np.bool_] | None = None) -> float:
    """Peak signal-to-noise ratio in dB for ``data_range = 1``; ``inf`` for identical images."""
    error = mse(first, second, mask)
    return math.inf if error == 0 else 10 * math.log10(1.0 / error)


def ssim(first: FloatArray, second: FloatArray, mask: NDArray[np.bool_] | None = None) -> float:
    """Structural similarity (scikit-image defaults, ``data_range = 1``), mean over ``mask``.

    As in scikit-image's mean SSIM, pixels within half a window of the image edge are left
    out (their windows are padded), so the unmasked value equals scikit-image's.
    """
    region = _pair(first, second, mask).copy()
    _, local = structural_similarity(
        np.asarray(first, dtype=np.float64),
        np.asarray(second, dtype=np.float64),
        data_range=1.0,
        win_size=_SSIM_WINDOW,
        full=True,
    )
    pad = (_SSIM_WINDOW - 1) // 2
    region[:pad], region[-pad:], region[:, :pad], region[:, -pad:] = False, False, False, False
    if not region.any():
        raise ValueError("mask lies entirely within the SSIM window of the image edge")
    return float(np.mean(local[region]))


def image_metrics(
    prediction: FloatArray, reference: FloatArray, mask: NDArray[np.bool_] | None = None
) -> dict[str, float]:
    """``{"mse", "ssim", "psnr"}`` of ``prediction`` against ``reference``."""
    return {
        "mse": mse(prediction, reference, mask),
        "ssim": ssim(prediction, reference, mask),
        "psnr": psnr(prediction, reference, mask),
    }


def layer_errors(
    layers: FloatArray, true_layers: FloatArray, masks: NDArray[np.bool_]
) -> dict[str, float]:
    """Errors of predicted layers ``(n, H, W)`` against ground truth inside the overlap.

    Only the overlap is informative: outside it a layer is the input image, which any
    method reproduces. Returns ``mse``/``mae``/``psnr`` per layer (``layer0_mse`` ...) and
    their means; raises ``ValueError`` if the masks do not overlap.
    """
    layers, true_layers = np.asarray(layers), np.asarray(true_layers)
    masks = np.asarray(masks, dtype=bool)
    if layers.shape != true_layers.shape or layers.shape != masks.shape or layers.ndim != 3:
        raise ValueError(
            f"layers, true_layers and masks must be (n, H, W) of one shape, got "
            f"{layers.shape}, {true_layers.shape}, {masks.shape}"
        )
    overlap = masks.sum(axis=0) >= 2
    if not overlap.any():
        raise ValueError("the masks do not overlap: no layer error to measure")
    result: dict[str, float] = {}
    for index in range(layers.shape[0]):
        difference = layers[index][overlap].astype(np.float64) - true_layers[index][overlap]
        error = float(np.mean(difference**2))
        result[f"layer{index}_mse"] = error
        result[f"layer{index}_mae"] = float(np.mean(np.abs(difference)))
        result[f"layer{index}_psnr"] = math.inf if error == 0 else 10 * math.log10(1 / error)
    for name in ("mse", "mae", "psnr"):
        result[name] = float(np.mean([result[f"layer{i}_{name}"] for i in range(layers.shape[0])]))
    return result


def overlap_boundary_band(m_cap: NDArray[np.bool_], width: int = 2) -> NDArray[np.bool_]:
    """Pixels within a ``width``-pixel band straddling the boundary of the overlap ``m_cap``.

    A seam left by a generator sits on the overlap's edge, so that is where its gradient is
    measured: ``ceil(width / 2)`` pixels inside the overlap and ``floor(width / 2)`` outside
    it (for the default 2: the overlap's outermost pixel and its outer neighbour, 4-connected).
    Parts of that boundary that are also a bone's own outline carry the bone's edge in the
    true layer too; intersect the band with an eroded bone mask to leave them out.
    """
    m_cap = np.asarray(m_cap, dtype=bool)
    if m_cap.ndim != 2:
        raise ValueError(f"m_cap must be a 2-D mask, got shape {m_cap.shape}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if not m_cap.any():
        raise ValueError("m_cap is empty: there is no overlap boundary")
    inner, outer = (width + 1) // 2, width // 2
    inside = m_cap & ~ndimage.binary_erosion(m_cap, iterations=inner, border_value=1)
    if outer == 0:
        return inside
    outside = ndimage.binary_dilation(m_cap, iterations=outer) & ~m_cap
    return inside | outside


def layer_seam_band(
    m_cap: NDArray[np.bool_], mask: NDArray[np.bool_], width: int = 2
) -> NDArray[np.bool_]:
    """The part of :func:`overlap_boundary_band` where a seam can show in one layer.

    That is where the band lies inside the layer's bone ``mask`` eroded by one pixel: on
    the bone's own outline both the true and the generated layer step to 0 (the mask
    edge, identical in both), and central differences there would measure that step.
    """
    mask = np.asarray(mask, dtype=bool)
    band = overlap_boundary_band(m_cap, width)
    if mask.shape != band.shape:
        raise ValueError(f"mask {mask.shape} does not match m_cap {band.shape}")
    return band & ndimage.binary_erosion(mask, border_value=1)


def gradient_magnitude(image: FloatArray) -> NDArray[np.float64]:
    """Per-pixel gradient magnitude by central differences (one-sided at the image edge)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"need a 2-D image, got shape {image.shape}")
    rows, cols = np.gradient(image)
    return np.hypot(rows, cols)


def seam_ratio(output: FloatArray, truth: FloatArray, band: NDArray[np.bool_]) -> float:
    """Mean gradient magnitude of ``output`` over ``band``, divided by that of ``truth``.

    1 means the output's edges along the band are as strong as the truth's; a generator
    that pastes a darker or brighter patch into the overlap leaves a seam, ratio > 1; one
    that blurs the band gives < 1. ``truth`` is the true layer on synthetic overlaps and
    the input image on real ones. Raises ``ValueError`` if the truth is flat on the band.
    """
    region = _pair(output, truth, band)
    reference = float(np.mean(gradient_magnitude(truth)[region]))
    if reference == 0:
        raise ValueError("the truth has no gradient on the band: the ratio is undefined")
    return float(np.mean(gradient_magnitude(output)[region])) / reference


def local_detail(image: FloatArray, sigma: float) -> NDArray[np.float64]:
    """``image`` minus its Gaussian-weighted local mean (standard deviation ``sigma`` px)."""
    image = np.asarray(image, dtype=np.float64)
    return image - ndimage.gaussian_filter(image, sigma=sigma, mode="nearest")


def detail_psnr(
    output: FloatArray, truth: FloatArray, mask: NDArray[np.bool_] | None, sigma: float
) -> float:
    """PSNR (``data_range = 1``) of the fine texture: both images with a local mean removed.

    The local mean is a Gaussian of standard deviation ``sigma`` pixels. Removing it
    takes away what a smooth, non-separating answer gets right (the bone's brightness
    level), so what is left measures whether the trabecular texture of each bone was
    recovered. Averaged over ``mask`` (the overlap) if given.
    """
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma!r}")
    _pair(output, truth, mask)
    return psnr(local_detail(output, sigma), local_detail(truth, sigma), mask)


def roc_auc(scores_pos: Iterable[float], scores_neg: Iterable[float]) -> float:
    """Area under the ROC curve: the chance a positive scores above a negative (ties 1/2).

    Computed from ranks (the Mann-Whitney U statistic), exact for any number of ties.
    0.5 means the scores do not tell the classes apart; 1 means they separate them fully.
    """
    positive = np.asarray(list(scores_pos), dtype=np.float64).ravel()
    negative = np.asarray(list(scores_neg), dtype=np.float64).ravel()
    if positive.size == 0 or negative.size == 0:
        raise ValueError(
            f"need at least one score per class, got {positive.size} positive and "
            f"{negative.size} negative"
        )
    if not (np.isfinite(positive).all() and np.isfinite(negative).all()):
        raise ValueError("scores must be finite")
    ranks = stats.rankdata(np.concatenate([positive, negative]))
    u_statistic = ranks[: positive.size].sum() - positive.size * (positive.size + 1) / 2
    return float(u_statistic / (positive.size * negative.size))


def load_feature_extractor(path: Path) -> FeatureExtractor:
    """A user-supplied feature extractor for FID, on the CPU, in eval mode.

    Either a TorchScript file (``torch.jit.save``) or, with the suffix ``.pt2``, a
    ``torch.export`` program (TorchScript is deprecated in recent torch releases). The
    module must map a float batch ``(B, C, H, W)`` in [0, 1] to features ``(B, D)`` and
    do its own resizing and normalisation. Nothing is ever downloaded.
    """
    if not path.is_file():
        raise ValueError(
            f"feature extractor {path} does not exist (FID needs a TorchScript or "
            "torch.export file you supply, e.g. an exported Inception-v3; nothing is "
            "downloaded)"
        )
    if path.suffix == ".pt2":
        try:
            return torch.export.load(path).module()
        except (RuntimeError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a torch.export program: {error}") from error
    try:
        with warnings.catch_warnings():
            # The user chose this format; torch's deprecation notice is not news to them.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as error:
        raise ValueError(f"{path} is not a TorchScript module: {error}") from error
    module.eval()
    return module


def extract_features(
    extractor: FeatureExtractor,
    images: Iterable[torch.Tensor],
    in_channels: int = 3,
) -> NDArray[np.float64]:
    """Features of batches of grey images ``(B, 1, H, W)``, repeated to ``in_channels``."""
    chunks = []
    with torch.inference_mode():
        for batch in images:
            if batch.dim() != 4 or batch.shape[1] != 1:
                raise ValueError(f"images must be (B, 1, H, W), got {tuple(batch.shape)}")
            features = extractor(batch.float().expand(-1, in_channels, -1, -1))
            chunks.append(features.reshape(features.shape[0], -1).double().numpy())
    if not chunks:
        raise ValueError("no images given")
    return np.concatenate(chunks)


def frechet_distance(first: NDArray[np.floating], second: NDArray[np.floating]) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` (FID's core).

    ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``; a tiny imaginary part of the
    matrix square root (numerical noise) is dropped.
    """
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if first.ndim != 2 or second.ndim != 2 or first.shape[1] != second.shape[1]:
        raise ValueError(f"need (N, D) feature sets of one D, got {first.shape}, {second.shape}")
    if len(first) < 2 or len(second) < 2:
        raise ValueError("each feature set needs at least 2 samples for a covariance")
    mean_gap = first.mean(axis=0) - second.mean(axis=0)
    cov1 = np.atleast_2d(np.cov(first, rowvar=False))
    cov2 = np.atleast_2d(np.cov(second, rowvar=False))
    root = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(root).all():
        offset = np.eye(cov1.shape[0]) * 1e-6
        root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    root = np.real(root)
    return float(mean_gap @ mean_gap + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root))


def fid(
    extractor: FeatureExtractor,
    real: Iterable[torch.Tensor],
    generated: Iterable[torch.Tensor],
    in_channels: int = 3,
) -> float:
    """FID between two sets of grey image batches, with the supplied ``extractor``."""
    return frechet_distance(
        extract_features(extractor, real, in_channels),
        extract_features(extractor, generated, in_channels),
    )
