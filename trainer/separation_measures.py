"""Per-epoch measures of separation that a non-separating answer cannot win.

On held-out joints, for the model and (once) for the identity layers beside it:

- synthetic overlaps (true layers known), drawn with the training shifts and with shifts
  well beyond them (``wide``): layer PSNR inside the overlap, detail PSNR (a Gaussian
  local mean of :data:`DETAIL_SIGMA` px removed, so only texture counts), the seam ratio
  (gradient on a 2-px band along the overlap boundary inside each bone, output / truth),
  and the Pearson r of k with the Laplace k the overlap was composed with;
- real overlapping joints: the reconstruction PSNR inside the overlap (Eq. 2's
  ``Lr(R_cap, J_cap)``, the real-image term phase 2 trains) and in the rest of the bones
  (where each layer must be the input: a change there is damage, not separation), the
  seam ratio against the input, the Pearson r of k with the Laplace k of the soft
  tissue, and the supervisor's verdict on the generated layers (mean "real" probability
  inside the overlap, Eq. 2's adversarial target);
- the supervisor's real-vs-generated AUC: its mean "real" probability inside the overlap
  on the true layers of synthetic overlaps (positives) against the generated layers of
  the same joints (negatives). 0.5 is a judge that tells nothing apart; the same AUC
  against the identity layers says whether it prefers true layers to a non-separation.
  Its mean "real" probability on those true layers (``val_true_verdict``) calibrates its
  verdict on the real joints: each epoch has another supervisor, so only the ratio of
  the two compares across epochs.

:func:`selection_score` combines them into the number the run keeps its best model by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from blsgan_core.inference import SeparationResult
from blsgan_core.metrics import detail_psnr, layer_seam_band, psnr, roc_auc, seam_ratio
from blsgan_core.networks.supervisor import Supervisor
from trainer.evaluation.separation import EvalJoint

DETAIL_SIGMA = 3.0
PSNR_CAP_DB = 100.0
#: Reconstruction PSNR of the real bones outside the overlap below which selection
#: deducts dB for dB: 40 dB is an RMS change of 1 % of the grey range (2.5 of 255 grey
#: levels), about where a change of the bone becomes visible.
OUTSIDE_FLOOR_DB = 40.0
SEAM_WIDTH_PX = 2
SELECTION_COLUMN = "val_selection"  # the log column of :func:`selection_score`
Row = dict[str, float | None]


def _capped(value: float) -> float:
    return min(float(value), PSNR_CAP_DB)


def _mean(values: Sequence[float]) -> float | None:
    finite = [value for value in values if math.isfinite(value)]
    return float(np.mean(finite)) if finite else None


def pearson_r(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Pearson correlation; ``None`` when either side is constant or has < 3 values."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"need paired values, got {a.shape} and {b.shape}")
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def laplace_k(joint: EvalJoint) -> float:
    """``1 - mean(B over the overlap)``: the soft tissue's transmittance (DESIGN.md)."""
    overlap = joint.masks.sum(axis=0) >= 2
    return 1.0 - float(joint.background[overlap].mean())


def _layer_seams(
    layers: NDArray[np.floating], truth: NDArray[np.floating], joint: EvalJoint
) -> float:
    """Mean over the layers of the seam ratio on each layer's part of the boundary band."""
    overlap = joint.masks.sum(axis=0) >= 2
    ratios = []
    for index in range(joint.masks.shape[0]):
        band = layer_seam_band(overlap, joint.masks[index], SEAM_WIDTH_PX)
        if not band.any():
            continue
        try:
            ratios.append(seam_ratio(layers[index], truth[index], band))
        except ValueError:
            continue  # the truth is flat on this band: no seam to compare with
    return float(np.mean(ratios)) if ratios else math.nan


def synthetic_measures(
    joints: Sequence[EvalJoint], outputs: Sequence[SeparationResult], prefix: str
) -> Row:
    """Layer and detail PSNR in the overlap, seam ratio, k's r: ``{prefix}_...`` means."""
    layer, detail, seams, k, true_k = [], [], [], [], []
    for joint, output in zip(joints, outputs, strict=True):
        if joint.true_layers is None or joint.true_k is None:
            raise ValueError(f"joint {joint.name} has no true layers: it is not synthetic")
        overlap = joint.masks.sum(axis=0) >= 2
        layers = output.layers.numpy()
        layer.append(
            float(
                np.mean([_capped(psnr(layers[i], joint.true_layers[i], overlap)) for i in range(2)])
            )
        )
        detail.append(
            float(
                np.mean(
                    [
                        _capped(detail_psnr(layers[i], joint.true_layers[i], overlap, DETAIL_SIGMA))
                        for i in range(2)
                    ]
                )
            )
        )
        seams.append(_layer_seams(layers, joint.true_layers, joint))
        k.append(float(output.k))
        true_k.append(joint.true_k)
    return {
        f"{prefix}_layer_psnr": _mean(layer),
        f"{prefix}_detail_psnr": _mean(detail),
        f"{prefix}_seam_ratio": _mean(seams),
        f"{prefix}_k_r": pearson_r(k, true_k),
        f"{prefix}_k_mean": _mean(k),
    }


def real_measures(joints: Sequence[EvalJoint], outputs: Sequence[SeparationResult]) -> Row:
    """Reconstruction PSNR in the overlap and in the bones outside it, seam ratio against
    the input, k's r."""
    overlap_psnr, outside_psnr, seams, k, reference_k = [], [], [], [], []
    for joint, output in zip(joints, outputs, strict=True):
        covered = joint.masks.sum(axis=0)
        overlap = covered >= 2
        reconstruction = output.reconstruction[0].numpy()
        overlap_psnr.append(_capped(psnr(reconstruction, joint.image, overlap)))
        outside_psnr.append(_capped(psnr(reconstruction, joint.image, covered == 1)))
        inputs = np.stack([joint.image * mask for mask in joint.masks])
        seams.append(_layer_seams(output.layers.numpy(), inputs, joint))
        k.append(float(output.k))
        reference_k.append(laplace_k(joint))
    return {
        "val_real_overlap_psnr": _mean(overlap_psnr),
        "val_real_outside_psnr": _mean(outside_psnr),
        "val_real_seam_ratio": _mean(seams),
        "val_real_k_r": pearson_r(k, reference_k),
        "val_real_k_mean": _mean(k),
    }


def _realness(
    supervisor: Supervisor,
    stacks: NDArray[np.float32],
    masks: NDArray[np.bool_],
    device: torch.device,
) -> list[float]:
    """Per stack: D's mean "real" probability over the overlap, both layers' channels."""
    scores = []
    n = supervisor.config.n_layers
    with torch.inference_mode():
        for start in range(0, len(stacks), 16):
            batch = torch.from_numpy(np.ascontiguousarray(stacks[start : start + 16])).to(device)
            probabilities = torch.sigmoid(supervisor(batch.float())[:, n:]).cpu().numpy()
            for index, probability in enumerate(probabilities):
                overlap = masks[start + index].sum(axis=0) >= 2
                scores.append(float(probability[:, overlap].mean()))
    return scores


def supervisor_measures(
    supervisor: Supervisor,
    synthetic: Sequence[EvalJoint],
    synthetic_outputs: Sequence[SeparationResult],
    real: Sequence[EvalJoint],
    real_outputs: Sequence[SeparationResult],
    device: torch.device,
) -> Row:
    """The supervisor's real-vs-generated AUC and its verdict on the real joints' layers.

    Beside it, ``val_supervisor_auc_identity``: the same AUC with the identity layers
    (the input inside each mask, no separation) in place of the generated ones. Above 0.5
    the judge prefers true layers to a non-separation; below 0.5 it finds the unseparated
    input more real than the truth, which is what Eq. 3 teaches it (its real sample
    ``J * M`` is "real" inside the overlap too; ``LossWeights.real_sample_without_overlap``
    is the departure that stops it), and then the adversarial term pulls the generator
    towards not separating.
    """
    row: Row = {
        "val_supervisor_auc": None,
        "val_supervisor_auc_identity": None,
        "val_real_verdict": None,
        "val_true_verdict": None,
    }
    was_training = supervisor.training
    supervisor.eval()
    try:
        if synthetic:
            masks = np.stack([joint.masks for joint in synthetic])
            true = np.stack([joint.truth() for joint in synthetic]).astype(np.float32)
            generated = np.stack([o.layers.numpy() for o in synthetic_outputs])
            true_realness = _realness(supervisor, true, masks, device)
            row["val_supervisor_auc"] = roc_auc(
                true_realness, _realness(supervisor, generated.astype(np.float32), masks, device)
            )
            identity = np.stack([joint.image * joint.masks for joint in synthetic])
            row["val_supervisor_auc_identity"] = roc_auc(
                true_realness, _realness(supervisor, identity.astype(np.float32), masks, device)
            )
            row["val_true_verdict"] = _mean(true_realness)
        if real:
            masks = np.stack([joint.masks for joint in real])
            generated = np.stack([o.layers.numpy() for o in real_outputs]).astype(np.float32)
            row["val_real_verdict"] = _mean(_realness(supervisor, generated, masks, device))
    finally:
        supervisor.train(was_training)
    return row


SELECTION_RULE = (
    "highest selection score over both phases: synthetic + wide-shift layer PSNR in the "
    "overlap - 20|log10 seam ratio| (both synthetic sets) + real reconstruction PSNR in "
    "the overlap / 2 - 20 log10 of the real joints' seam ratio against the input where "
    "above 1 + 5 x the supervisor's verdict on the real joints' layers relative to its "
    "verdict on true layers (at most 1) - the dB by which the real bones' reconstruction "
    f"outside the overlap falls below {OUTSIDE_FLOOR_DB:g} dB"
)


def calibrated_verdict(row: Row) -> float:
    """D's "real" verdict on the real joints' layers over that on true layers, in [0, 1].

    1: the supervisor of that epoch finds the layers of real overlaps as real as true
    layers; 0 without a supervisor (the baselines).
    """
    verdict, reference = row.get("val_real_verdict"), row.get("val_true_verdict")
    if verdict is None or reference is None or not reference > 0:
        return 0.0
    return float(min(1.0, max(0.0, verdict / reference)))


def selection_score(row: Row) -> float | None:
    """The number a run keeps its best model by (higher is better), in dB.

    Separation where the truth is known: ``synthetic layer PSNR + wide-shift layer PSNR``
    (within and beyond the training shifts) ``- 20 |log10(seam ratio)|`` for both sets (a
    seam's excess edge strength as an amplitude ratio in dB). What phase 2 trains, on
    real overlaps without truth: ``+ real overlap PSNR / 2`` (Eq. 2's ``Lr(R_cap, J_cap)``;
    halved because a non-separating answer already scores high on it), ``- 20
    log10(real seam ratio)`` where that ratio is above 1 (a layer edge on the overlap's
    boundary stronger than the input's own edge there, which also carries the other
    bone's outline, is a seam no separation explains), and ``+ 5 *``
    :func:`calibrated_verdict` (up to 5 dB). ``- max(0, OUTSIDE_FLOOR_DB - real
    outside PSNR)``: the layers must leave the bone outside the overlap as it is, and none
    of the other terms sees it (a run with a heavy seam loss scored its best selection
    while changing that bone to 33 dB; docs/training.md, Session 11); rows logged before
    this term (no ``val_real_outside_psnr``) are scored without it. Phase 1 and phase 2
    epochs compete on equal terms; ``None`` if a part is missing.
    """
    parts = (
        "val_synthetic_layer_psnr",
        "val_wide_layer_psnr",
        "val_real_overlap_psnr",
        "val_synthetic_seam_ratio",
        "val_wide_seam_ratio",
        "val_real_seam_ratio",
    )
    values = [row.get(key) for key in parts]
    if any(value is None or not math.isfinite(value) or value <= 0 for value in values):
        return None
    synthetic, wide, real, seam, wide_seam, real_seam = (float(v) for v in values)  # type: ignore[arg-type]
    return (
        synthetic
        + wide
        - 20 * abs(math.log10(seam))
        - 20 * abs(math.log10(wide_seam))
        + real / 2
        - 20 * max(0.0, math.log10(real_seam))
        + 5 * calibrated_verdict(row)
        - outside_shortfall(row)
    )


def outside_shortfall(row: Row) -> float:
    """dB by which the real bones' reconstruction outside the overlap falls below
    :data:`OUTSIDE_FLOOR_DB` (0 above it, and for rows without the measure)."""
    outside = row.get("val_real_outside_psnr")
    if outside is None or not math.isfinite(outside):
        return 0.0
    return max(0.0, OUTSIDE_FLOOR_DB - float(outside))
