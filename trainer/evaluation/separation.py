"""The joints and separators of the separation evaluation, and the paper's protocol.

Joints: real ones whose masks overlap by at least 20 px, and seeded synthetic overlaps
made from non-overlapping joints (true layers and k known). Synthetic joints whose drawn
shifts leave the bones apart (no overlap) are left out.

Separators (images, masks, backgrounds -> layers, k, reconstruction): the model, and two
answers that separate nothing, to be measured beside it: the identity layers (each layer
= the input inside its mask) and the trivial answer (the input as upper layer, the lower
bone replaced by the soft-tissue background in the overlap); both take ``k = 1 - mean(B
over the overlap)`` from the Laplace background B.

The paper's protocol (Table 2, :func:`real_scores`): the Eq. 1 reconstruction against the
input over the whole 256 x 256 joint, the input itself outside the bones. Answers that
separate nothing score 40 dB to the cap on it, so :mod:`trainer.evaluation.separation_report`
measures inside the overlap and the bones instead and keeps this one for reference. The
per-epoch validation of training (:class:`SeparationScores`) still uses it beside the
layer error on synthetic overlaps (``layer_psnr``, the mean over the two layers of
``10 log10(1 / mse)`` inside the overlap). PSNR is capped at :data:`PSNR_CAP_DB` so that
reports stay finite JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from blsgan_core.data import JointRecord
from blsgan_core.inference import SeparationResult, separate
from blsgan_core.metrics import image_metrics, layer_errors
from blsgan_core.model import BLSGANModel
from blsgan_core.reconstruction import reconstruct, transmittance_from_background
from blsgan_core.synthetic import SyntheticConfig, synthesize_overlap
from trainer.datasets import REAL_OVERLAP_MIN_PX, SampleStore

PSNR_CAP_DB = 100.0
# Real joints start at 20 px (the authors' "overlapping"); synthetic ones can be smaller.
OVERLAP_BINS: tuple[tuple[int, int | None], ...] = ((1, 100), (100, 400), (400, 1000), (1000, None))
PAPER_TABLE2 = {"mse": 0.88e-4, "mse_std": 0.70e-4, "ssim": 0.9837, "psnr": 41.09}

# images (B, 1, H, W), masks (B, 2, H, W), backgrounds (B, 1, H, W) -> layers, k, R
Separator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], SeparationResult]


@dataclass(frozen=True)
class EvalJoint:
    """One joint to evaluate: arrays in [0, 1] (masks boolean), true layers if synthetic.

    ``masks`` are the true ones (annotated, or those of a synthetic overlap) and
    ``overlap_px`` their intersection. ``input_masks`` and ``input_background``, when set,
    are what a separator is given instead (the segmenter's masks and the Laplace
    background solved for them): the node's own path.
    """

    name: str
    image: NDArray[np.float32]
    masks: NDArray[np.bool_]
    background: NDArray[np.float32]
    overlap_px: int
    true_layers: NDArray[np.float32] | None = None
    true_k: float | None = None
    input_masks: NDArray[np.bool_] | None = None
    input_background: NDArray[np.float32] | None = None

    @property
    def given_masks(self) -> NDArray[np.bool_]:
        """The masks a separator works with."""
        return self.masks if self.input_masks is None else self.input_masks

    @property
    def given_background(self) -> NDArray[np.float32]:
        """The soft-tissue background of :attr:`given_masks`."""
        return self.background if self.input_background is None else self.input_background

    def truth(self) -> NDArray[np.float32]:
        """The true layers; a ``ValueError`` for a real joint, which has none."""
        if self.true_layers is None:
            raise ValueError(f"joint {self.name} has no true layers: it is not synthetic")
        return self.true_layers


def real_joints(
    records: Sequence[JointRecord],
    store: SampleStore,
    min_overlap_px: int = REAL_OVERLAP_MIN_PX,
    limit: int | None = None,
) -> list[EvalJoint]:
    """The real joints of ``records`` whose masks overlap by at least ``min_overlap_px``
    (the first ``limit`` of them if given)."""
    joints: list[EvalJoint] = []
    for record in records:
        if record.overlap_px < min_overlap_px:
            continue
        if limit is not None and len(joints) >= limit:
            break
        stored = store.get(record)
        joints.append(
            EvalJoint(
                record.image.name,
                stored.image_float(),
                stored.masks,
                stored.background_float(),
                stored.overlap_px,
            )
        )
    return joints


def synthetic_joints(
    records: Sequence[JointRecord],
    store: SampleStore,
    *,
    seed: int,
    options: SyntheticConfig | None = None,
    limit: int | None = None,
) -> list[EvalJoint]:
    """Seeded synthetic overlaps of the non-overlapping joints of ``records``.

    Joint ``i`` (in image-path order) gets the generator ``(seed, i)``: the same records
    and seed give the same overlaps, whatever order the records came in. ``limit``
    stops after that many overlaps (the first ones of the full set).
    """
    sources = sorted((r for r in records if r.overlap_px == 0), key=lambda r: str(r.image))
    joints: list[EvalJoint] = []
    for index, record in enumerate(sources):
        if limit is not None and len(joints) >= limit:
            break
        stored = store.get(record)
        made = synthesize_overlap(
            stored.image_float(),
            stored.masks[0],
            stored.masks[1],
            np.random.default_rng([seed, index]),
            background=stored.background_float(),
            config=options,
        )
        if made.overlap_px == 0:
            continue  # bones too far apart for the drawn shifts: no layer error to measure
        joints.append(
            EvalJoint(
                record.image.name,
                made.image,
                made.masks,
                stored.background_float(),
                made.overlap_px,
                made.layers,
                made.k,
            )
        )
    return joints


def identity_separator(
    images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
) -> SeparationResult:
    """The baseline: each layer is the input inside its mask; k from the background."""
    masks = masks.to(images.dtype)
    layers = images * masks
    overlap = (masks.sum(dim=1, keepdim=True) >= 2).to(images.dtype)
    region = torch.where(overlap.flatten(1).sum(1, keepdim=True) > 0, overlap.flatten(1), 1.0)
    mean_background = (backgrounds.flatten(1) * region).sum(1) / region.sum(1)
    k = transmittance_from_background(mean_background)
    if not isinstance(k, torch.Tensor):
        raise TypeError("transmittance of a tensor must be a tensor")
    k = k.clamp(min=1e-3)
    return SeparationResult(layers, k, reconstruct(layers, masks, k))


def trivial_separator(
    images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
) -> SeparationResult:
    """An answer that separates nothing but reproduces the input.

    The upper layer is the input inside its mask; the lower layer is the input outside
    the overlap and the soft-tissue background inside it (the lower bone vanishes there);
    k comes from that background, as for :func:`identity_separator`. Eq. 1 then gives
    ``1 - (1 - J)(1 - B)/(1 - mean B)``, about J, in the overlap and J elsewhere.
    """
    identity = identity_separator(images, masks, backgrounds)
    masks = masks.to(images.dtype)
    overlap = masks[:, :1] * masks[:, 1:2]
    lower = torch.where(overlap > 0, backgrounds, images) * masks[:, 1:2]
    layers = torch.cat([images * masks[:, :1], lower], dim=1)
    return SeparationResult(layers, identity.k, reconstruct(layers, masks, identity.k))


def model_separator(
    model: BLSGANModel,
    device: torch.device | str | None = None,
    *,
    boundary_blend: str | None = None,
) -> Separator:
    """A separator running ``model`` through :func:`blsgan_core.inference.separate`
    (``boundary_blend``: as there; ``None`` follows the model's config)."""

    def run(
        images: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor
    ) -> SeparationResult:
        return separate(images, masks, model, device=device, boundary_blend=boundary_blend)

    return run


def run_separator(
    separator: Separator, joints: Sequence[EvalJoint], batch_size: int = 16
) -> list[SeparationResult]:
    """Per-joint outputs (batch dimension dropped) of ``separator`` over ``joints``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    outputs: list[SeparationResult] = []
    for start in range(0, len(joints), batch_size):
        chunk = joints[start : start + batch_size]
        images = torch.from_numpy(np.stack([j.image for j in chunk]))[:, None]
        masks = torch.from_numpy(np.stack([j.given_masks for j in chunk]).astype(np.float32))
        backgrounds = torch.from_numpy(np.stack([j.given_background for j in chunk]))[:, None]
        result = separator(images, masks, backgrounds)
        used = result.masks
        for index in range(len(chunk)):
            outputs.append(
                SeparationResult(
                    result.layers[index],
                    result.k[index],
                    result.reconstruction[index],
                    None if used is None else used[index],
                )
            )
    return outputs


def capped_psnr(value: float) -> float:
    """A PSNR in dB capped at :data:`PSNR_CAP_DB` (``inf`` for identical images)."""
    return min(float(value), PSNR_CAP_DB)


def completed_reconstruction(joint: EvalJoint, output: SeparationResult) -> NDArray[np.float32]:
    """The reconstruction inside the bones (of the masks the separator was given, where
    Eq. 1 defines it) and the input outside them, ``(H, W)``."""
    union = joint.given_masks.any(axis=0)
    reconstruction = output.reconstruction[0].numpy()
    return np.where(union, reconstruction, joint.image).astype(np.float32)


def real_scores(joint: EvalJoint, output: SeparationResult) -> dict[str, float]:
    """MSE, SSIM, PSNR of the (completed) reconstruction against the input joint."""
    scores = image_metrics(completed_reconstruction(joint, output), joint.image)
    return {**scores, "psnr": capped_psnr(scores["psnr"])}


def synthetic_scores(joint: EvalJoint, output: SeparationResult) -> dict[str, float]:
    """Layer MSE/PSNR against the true layers inside the overlap, and the error of k.

    ``layer_mse`` and ``layer_psnr`` are the means over the two layers of
    :func:`blsgan_core.metrics.layer_errors` (PSNR per layer, capped).
    """
    if joint.true_layers is None or joint.true_k is None:
        raise ValueError(f"joint {joint.name} has no true layers: it is not synthetic")
    errors = layer_errors(output.layers.numpy(), joint.true_layers, joint.masks)
    count = joint.true_layers.shape[0]
    return {
        "layer_mse": errors["mse"],
        "layer_psnr": float(np.mean([capped_psnr(errors[f"layer{i}_psnr"]) for i in range(count)])),
        "k_abs_error": abs(float(output.k) - joint.true_k),
    }


def summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, (population) standard deviation and count of the values that exist."""
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not present.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(present.mean()), "std": float(present.std()), "n": int(present.size)}


def bin_label(low: int, high: int | None) -> str:
    """``"<100"``, ``"100-400"`` or ``">=1000"``: the name of an overlap-size bin in pixels."""
    if high is None:
        return f">={low}"
    return f"<{high}" if low <= 1 else f"{low}-{high}"


def scores_by_overlap(
    scores: Sequence[dict[str, float]], overlaps: Sequence[int], keys: Sequence[str]
) -> list[dict[str, Any]]:
    """Per overlap-size bin: its bounds, the number of joints, mean/std of each key."""
    rows = []
    for low, high in OVERLAP_BINS:
        inside = [
            score
            for score, px in zip(scores, overlaps, strict=True)
            if px >= low and (high is None or px < high)
        ]
        row: dict[str, Any] = {
            "bin": bin_label(low, high),
            "min_px": low,
            "max_px": high,
            "n_images": len(inside),
        }
        row.update({key: summary([score[key] for score in inside]) for key in keys})
        rows.append(row)
    return rows


REAL_KEYS = ("mse", "ssim", "psnr")
SYNTHETIC_KEYS = ("layer_mse", "layer_psnr", "k_abs_error")


@dataclass(frozen=True)
class SeparationScores:
    """Per-joint scores of one separator on both protocols (kept for plots)."""

    real: list[dict[str, float]]
    real_overlaps: list[int]
    synthetic: list[dict[str, float]]
    synthetic_overlaps: list[int]

    def report(self) -> dict[str, Any]:
        """Mean/std per protocol and per overlap bin, as JSON-ready data."""
        return {
            "real": {
                "n_images": len(self.real),
                **{key: summary([s[key] for s in self.real]) for key in REAL_KEYS},
            },
            "synthetic": {
                "n_images": len(self.synthetic),
                **{key: summary([s[key] for s in self.synthetic]) for key in SYNTHETIC_KEYS},
            },
            "by_overlap": {
                "real": scores_by_overlap(self.real, self.real_overlaps, REAL_KEYS),
                "synthetic": scores_by_overlap(
                    self.synthetic, self.synthetic_overlaps, SYNTHETIC_KEYS
                ),
            },
        }


def score_separator(
    separator: Separator,
    real: Sequence[EvalJoint],
    synthetic: Sequence[EvalJoint],
    batch_size: int = 16,
) -> SeparationScores:
    """Run ``separator`` on both sets of joints and score every joint."""
    real_outputs = run_separator(separator, real, batch_size)
    synthetic_outputs = run_separator(separator, synthetic, batch_size)
    return SeparationScores(
        real=[real_scores(j, o) for j, o in zip(real, real_outputs, strict=True)],
        real_overlaps=[j.overlap_px for j in real],
        synthetic=[
            synthetic_scores(j, o) for j, o in zip(synthetic, synthetic_outputs, strict=True)
        ],
        synthetic_overlaps=[j.overlap_px for j in synthetic],
    )
