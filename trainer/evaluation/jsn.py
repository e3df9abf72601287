"""The paper's clinical validation: follow-up registration with and without separation.

Every pair of consecutive images of one joint (records sharing a ``case``, in manifest
order; the visit order is unknown, so the first is called the baseline) is registered
bone by bone, baseline -> follow-up (:func:`blsgan_core.registration.register_bone`),
from five kinds of bone images, all in the same run:

- ``separated``: the BLS-GAN layer of the bone (``L_i``, zero outside ``M_i``);
- ``raw`` (without separation): the raw joint inside the same outline (``J * M_i``),
  which is also the do-nothing separator (identity layers);
- ``smoothed`` (control): ``J * M_i`` Gaussian-filtered (``sigma`` px) and masked again,
  layers that separate nothing but hold less texture;
- ``overlap_excluded`` (control): the raw joint inside the bone's own, non-overlapped
  part ``M_i - M_other`` (a partial registration that ignores the overlap);
- ``separated_smoothed``: the BLS-GAN layer smoothed as ``smoothed`` smooths the raw
  joint. Smoothing alone lowers both errors, so separation adds something only if this
  beats ``smoothed`` (both hold equally little texture; only the other bone differs).

Two errors per bone and registration, averaged over the pair's two bones:

- ``mse``, the paper's protocol: the registration's own MSE, on the images it was
  computed from, over both outlines. Smoother images mismatch less, so a blurred
  non-separating answer can win it by construction (it did: sigma 1 px beat BLS-GAN).
- ``bone_mse``, the motion judged on evidence all conditions share: each condition's
  motion moves the **raw** baseline radiograph, compared with the **raw** follow-up over
  the registered bone's own pixels (inside the bone's outline in the follow-up or the
  moved baseline) where neither image shows the other bone (the other bone's mask in the
  follow-up and, moved by this bone's motion, in the baseline are left out). The image
  and the region are the same for every condition, so smoothing or any other change of
  the layers can only win by finding a better motion. ``no_motion`` (the baseline left
  where it is) is its do-nothing baseline. ``overlap_excluded`` registers the raw
  image over nearly this region, so this error favours it; it is reported as the
  partial registration that simply ignores the overlap.

Paired two-sided t-tests (``scipy.stats.ttest_rel``): separated vs raw on both errors
(``p_value`` is the paper's), and separated vs each control on ``bone_mse``; over all
pairs and by overlap size (the larger ``overlap_px`` of the two images).

The masks are the annotations of the manifest (as in the paper, which measures the
separation, not a segmenter); records the loader rejects as annotation errors are left
out, and so are the pairs they belonged to. Results can be appended pair by pair to a
JSON-lines file, from which an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from blsgan_core.data import JointRecord, JointSample, load_sample
from blsgan_core.registration import (
    RigidRegistration,
    apply_motion,
    register_bone,
    smooth_inside,
)

BONES = ("upper", "lower")
CONDITIONS = ("separated", "raw", "smoothed", "overlap_excluded", "separated_smoothed")
# Overlap bins in pixels: none (< 20, the authors' threshold), small, large (the paper
# finds the gain clearest below 1000 px).
OVERLAP_BINS: tuple[tuple[int, int | None], ...] = ((0, 20), (20, 1000), (1000, None))
# Wang et al., AAAI 2025: registration MSE of follow-up pairs, mean +- std.
PAPER = {
    "with_separation": {"mean": 0.0088, "std": 0.0118},
    "without_separation": {"mean": 0.0103, "std": 0.0133},
}
DEFAULT_SIGMA = 1.0
# Pairs separated and registered between two appends to the resume file.
CHUNK_PAIRS = 25

# images (B, H, W), masks (B, 2, H, W) -> layers (B, 2, H, W)
Separator = Callable[[NDArray[np.float32], NDArray[np.bool_]], NDArray[np.float32]]


@dataclass(frozen=True)
class PairResult:
    """Errors of one follow-up pair per condition (NaN where a condition had no pixels)."""

    case: str
    baseline: str
    follow_up: str
    overlap_px: int
    mse: dict[str, float]
    mse_unregistered: dict[str, float]
    bone_mse: dict[str, float]


def follow_up_pairs(records: Sequence[JointRecord]) -> list[tuple[JointRecord, JointRecord]]:
    """Consecutive images of each joint, in the order the records come."""
    by_case: dict[str, list[JointRecord]] = {}
    for record in records:
        by_case.setdefault(record.case, []).append(record)
    return [
        (images[i], images[i + 1]) for images in by_case.values() for i in range(len(images) - 1)
    ]


def separate_records(
    records: Sequence[JointRecord], separator: Separator, batch_size: int = 8
) -> dict[JointRecord, NDArray[np.float32]]:
    """Layers ``(2, H, W)`` of every record, separated in batches."""
    layers: dict[JointRecord, NDArray[np.float32]] = {}
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        samples = [load_sample(record) for record in chunk]
        images = np.stack([s.image for s in samples]).astype(np.float32)
        masks = np.stack([np.stack([s.upper, s.lower]) for s in samples])
        for record, result in zip(chunk, separator(images, masks), strict=True):
            layers[record] = np.asarray(result, dtype=np.float32)
    return layers


def _bone_images(
    sample: JointSample, layers: NDArray[np.float32], channel: int, sigma: float
) -> dict[str, tuple[NDArray[np.float32], NDArray[np.bool_]]]:
    """(image, outline) of one bone for every condition."""
    own, other = getattr(sample, BONES[channel]), getattr(sample, BONES[1 - channel])
    raw = np.where(own, sample.image, 0.0).astype(np.float32)
    separated = np.where(own, layers[channel], 0.0).astype(np.float32)
    alone = own & ~other
    return {
        "separated": (separated, own),
        "raw": (raw, own),
        "smoothed": (smooth_inside(raw, own, sigma), own),
        "overlap_excluded": (np.where(alone, sample.image, 0.0).astype(np.float32), alone),
        "separated_smoothed": (smooth_inside(separated, own, sigma), own),
    }


def bone_mse(
    motion: RigidRegistration, baseline: JointSample, follow_up: JointSample, channel: int
) -> float:
    """MSE of the raw radiographs over the bone's own, non-overlapped pixels after ``motion``.

    NaN when no such pixel is left.
    """
    own, other = BONES[channel], BONES[1 - channel]
    moved = apply_motion(baseline.image, motion)
    reached = apply_motion(np.ones_like(baseline.image), motion, order=1) >= 1.0 - 1e-3
    moved_own = apply_motion(getattr(baseline, own).astype(np.float32), motion, order=1) >= 0.5
    moved_other = apply_motion(getattr(baseline, other).astype(np.float32), motion, order=1)
    region = (
        (getattr(follow_up, own) | moved_own)
        & ~getattr(follow_up, other)
        & ~(moved_other >= 0.5)
        & reached
    )
    if not region.any():
        return float("nan")
    return float(np.mean((moved[region] - follow_up.image[region]) ** 2))


def _pair_errors(
    first: JointRecord,
    second: JointRecord,
    layers: dict[JointRecord, NDArray[np.float32]],
    sigma: float,
) -> PairResult:
    a, b = load_sample(first), load_sample(second)
    values: dict[str, dict[str, list[float]]] = {
        "mse": {c: [] for c in CONDITIONS},
        "mse_unregistered": {c: [] for c in CONDITIONS},
        "bone_mse": {c: [] for c in (*CONDITIONS, "no_motion")},
    }
    for channel in range(len(BONES)):
        moving = _bone_images(a, layers[first], channel, sigma)
        fixed = _bone_images(b, layers[second], channel, sigma)
        for condition in CONDITIONS:
            (image_a, mask_a), (image_b, mask_b) = moving[condition], fixed[condition]
            if not (mask_a.any() and mask_b.any()):
                for kind in values:
                    values[kind][condition].append(float("nan"))
                continue
            motion = register_bone(image_a, mask_a, image_b, mask_b)
            values["mse"][condition].append(motion.mse)
            values["mse_unregistered"][condition].append(motion.mse_identity)
            values["bone_mse"][condition].append(bone_mse(motion, a, b, channel))
        still = RigidRegistration(0.0, 0.0, 0.0, (0.0, 0.0), float("nan"), float("nan"))
        values["bone_mse"]["no_motion"].append(bone_mse(still, a, b, channel))
    mean = {
        kind: {c: float(np.mean(v)) for c, v in per_condition.items()}
        for kind, per_condition in values.items()
    }
    return PairResult(
        case=first.case,
        baseline=str(first.image),
        follow_up=str(second.image),
        overlap_px=max(first.overlap_px, second.overlap_px),
        **mean,
    )


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"mean": None, "std": None, "median": None, "n": 0}
    return {
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
        "median": float(np.median(array)),
        "n": int(array.size),
    }


def _paired(first: Sequence[float], second: Sequence[float]) -> dict[str, float | int | None]:
    """Paired two-sided t-test of ``first`` against ``second`` over pairs where both exist."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    a, b = a[both], b[both]
    p_value: float | None = None
    statistic: float | None = None
    if a.size >= 2 and np.any(a != b):
        test = stats.ttest_rel(a, b)
        p_value, statistic = float(test.pvalue), float(test.statistic)
    return {
        "n": int(a.size),
        "lower": int(np.sum(a < b)),
        "mean_difference": float(np.mean(a - b)) if a.size else None,
        "p_value": p_value,
        "t_statistic": statistic,
    }


def _condition(pairs: Sequence[PairResult], condition: str) -> dict[str, Any]:
    return {
        kind: _summary([getattr(p, kind)[condition] for p in pairs])
        for kind in ("mse", "mse_unregistered", "bone_mse")
    }


def compare(pairs: Sequence[PairResult]) -> dict[str, Any]:
    """Means of every condition and the paired tests of separation against the others.

    ``separated_smoothed_vs_smoothed`` is the test of separation beyond smoothing: both
    images are smoothed alike, one of them separated.
    """

    def column(kind: str, condition: str) -> list[float]:
        return [getattr(p, kind)[condition] for p in pairs]

    def tests(kind: str, others: Sequence[str]) -> dict[str, dict[str, float | int | None]]:
        versus = {
            f"separated_vs_{other}": _paired(column(kind, "separated"), column(kind, other))
            for other in others
        }
        versus["separated_smoothed_vs_smoothed"] = _paired(
            column(kind, "separated_smoothed"), column(kind, "smoothed")
        )
        return versus

    paper = _paired(column("mse", "separated"), column("mse", "raw"))
    return {
        "n_pairs": len(pairs),
        "with_separation": _condition(pairs, "separated"),
        "without_separation": _condition(pairs, "raw"),
        "with_separation_smoothed": _condition(pairs, "separated_smoothed"),
        "controls": {
            "smoothed": _condition(pairs, "smoothed"),
            "overlap_excluded": _condition(pairs, "overlap_excluded"),
            "no_motion": {"bone_mse": _summary(column("bone_mse", "no_motion"))},
        },
        "lower_with_separation": paper["lower"],
        "p_value": paper["p_value"],
        "t_statistic": paper["t_statistic"],
        "bone_mse_tests": tests("bone_mse", ("raw", "smoothed", "overlap_excluded", "no_motion")),
        "mse_tests": tests("mse", ("raw", "smoothed", "overlap_excluded")),
    }


def _bin_name(low: int, high: int | None) -> str:
    return f"{low}-{high - 1}" if high is not None else f">={low}"


def _read_done(path: Path | None) -> dict[tuple[str, str], PairResult]:
    if path is None or not path.is_file():
        return {}
    done: dict[tuple[str, str], PairResult] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            result = PairResult(**json.loads(line))
            if set(CONDITIONS) <= set(result.mse):  # older files lack newer conditions
                done[(result.baseline, result.follow_up)] = result
    return done


def _chunks(
    pairs: Sequence[tuple[JointRecord, JointRecord]],
) -> Iterator[Sequence[tuple[JointRecord, JointRecord]]]:
    for start in range(0, len(pairs), CHUNK_PAIRS):
        yield pairs[start : start + CHUNK_PAIRS]


def evaluate_jsn(
    records: Sequence[JointRecord],
    separator: Separator,
    *,
    limit: int | None = None,
    sigma: float = DEFAULT_SIGMA,
    resume_file: Path | None = None,
) -> dict[str, Any]:
    """Register every follow-up pair of ``records`` (the first ``limit``) every way.

    With ``resume_file`` each pair's result is appended to it as one JSON line, and pairs
    already there are not run again (delete the file to start over). Raises
    ``ValueError`` when the records hold no follow-up pair or ``sigma`` is not positive.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    started = time.perf_counter()
    pairs = follow_up_pairs(records)[:limit]
    if not pairs:
        raise ValueError("no follow-up pairs: no two records share a case")
    done = _read_done(resume_file)
    todo = [(a, b) for a, b in pairs if (str(a.image), str(b.image)) not in done]
    separated_s = 0.0
    for chunk in _chunks(todo):
        clock = time.perf_counter()
        layers = separate_records(list(dict.fromkeys(r for pair in chunk for r in pair)), separator)
        separated_s += time.perf_counter() - clock
        for first, second in chunk:
            result = _pair_errors(first, second, layers, sigma)
            done[(result.baseline, result.follow_up)] = result
            if resume_file is not None:
                with resume_file.open("a") as stream:
                    stream.write(json.dumps(asdict(result)) + "\n")
    results = [done[(str(a.image), str(b.image))] for a, b in pairs]
    by_overlap = []
    for low, high in OVERLAP_BINS:
        inside = [
            r for r in results if r.overlap_px >= low and (high is None or r.overlap_px < high)
        ]
        by_overlap.append({"overlap_px": _bin_name(low, high), **compare(inside)})
    return {
        **compare(results),
        "by_overlap": by_overlap,
        "test": "paired two-sided t-test (scipy.stats.ttest_rel)",
        "registration": "rigid (shift + rotation) per bone, baseline -> follow-up; "
        "mean over the two bones",
        "errors": {
            "mse": "the paper's protocol: the registration's own MSE on the images it "
            "registered, over both outlines",
            "bone_mse": "each condition's motion applied to the raw baseline, MSE against "
            "the raw follow-up over the bone's own pixels where neither image shows the "
            "other bone (same image and region for every condition)",
        },
        "smoothing_sigma_px": sigma,
        "resumed_pairs": len(pairs) - len(todo),
        "paper": PAPER,
        "runtime_s": {
            "separation": separated_s,
            "total": time.perf_counter() - started,
        },
        "pairs": [asdict(r) for r in results],
    }
