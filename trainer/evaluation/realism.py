"""An automated visual Turing test (the paper's Table 4, without observers).

A small CNN learns to tell real bone patches from generated ones; its ROC AUC on joints
it never saw says how well the generated layers pass for real bone (0.5: not at all
distinguishable; goal <= 0.65). Trained on the CPU in seconds to minutes, seeded.

- **Real** patches: the true layers of synthetic overlaps made from non-overlapping
  joints, i.e. real bone (``J * M_i`` of a joint whose bones do not overlap, moved), each
  patch centred on the overlap the move creates, so that a real and a generated patch
  show the bone end and the overlap at the same place and only their content differs.
- **Generated** patches: a separator's layers on real overlapping joints, centred on the
  (annotated) overlap.

Both are :attr:`RealismConfig.patch_size` px windows of each layer, jittered by up to
:attr:`RealismConfig.jitter` px, zero outside the bone's outline: the true layers are, and a
separator's layers are cut to the outline it was given. A model with a mask margin
(:attr:`blsgan_core.model.BLSGANConfig.mask_margin_px`) extends its layers a pixel beyond
that outline, with the soft tissue Eq. 1 asks for there; the test judges its bone, not
that rim, which every classifier found at once (AUC 1.0, docs/training.md, session 21).
For every separator without a margin the cut changes nothing. The classifier
trains only on the joints of the training side of the split and is measured on the
held-out side; the same classifiers for every separator, so the answers that separate
nothing (whose overlap holds both bones, or none) are judged the same way as the model.

The two kinds of joint differ also where no separator changes anything: bone of joints
whose bones overlap against bone of joints whose bones do not. :func:`population_floor`
measures that: the same classifiers on untouched bone of both kinds, windows moved along
each bone away from the overlap until they hold none of it. Its AUC is what a perfect
separator would still score; a model's AUC is read against it.

One such classifier is an unstable judge: on the same patches, classifiers that differ
only in their seed gave one model AUCs from 0.61 to 0.99 (session 6; docs/training.md).
So :attr:`RealismConfig.classifiers` classifiers are trained per separator (seeds
``seed``, ``seed + 1``, ...), and the reported AUC is their median, with every one of
them beside it; a realism claim needs the median, not a lucky seed.

Because of that floor the goal cannot be reached on real joints. :func:`synthetic_turing_test`
asks the same question without the confound, on synthetic overlaps: a separator's layers
against the true layers of the same overlaps, where a perfect separator scores 0.5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.stats import t as student_t
from torch import nn

from blsgan_core.metrics import roc_auc
from trainer.evaluation.separation import EvalJoint, Separator, run_separator

Patches = NDArray[np.float32]


@dataclass(frozen=True)
class RealismConfig:
    """Patches and the classifier's training (Adam steps on seeded random batches, so the
    training effort does not depend on how many joints there are); the defaults take well
    under a minute per separator on one core."""

    patch_size: int = 32
    jitter: int = 4
    patches_per_layer: int = 2
    steps: int = 600
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    classifiers: int = 5

    def __post_init__(self) -> None:
        if self.patch_size < 8 or self.jitter < 0 or self.patches_per_layer < 1:
            raise ValueError(
                f"need patch_size >= 8, jitter >= 0, patches_per_layer >= 1, got {self}"
            )
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0 or self.classifiers < 1:
            raise ValueError(
                f"need steps >= 1, batch_size >= 1, lr > 0, classifiers >= 1, got {self}"
            )


def overlap_centre(masks: NDArray[np.bool_]) -> tuple[int, int]:
    """Row and column of the centroid of the masks' intersection (which must exist)."""
    rows, cols = np.nonzero(np.asarray(masks.all(axis=0)))
    if not rows.size:
        raise ValueError("the masks do not overlap: no overlap to centre a patch on")
    return round(float(rows.mean())), round(float(cols.mean()))


def window(image: NDArray[np.floating], centre: tuple[int, int], size: int) -> Patches:
    """The ``size`` square of ``image`` around ``centre``, zero beyond the image edge."""
    padded = np.pad(np.asarray(image, dtype=np.float32), size)
    top, left = centre[0] - size // 2 + size, centre[1] - size // 2 + size
    return padded[top : top + size, left : left + size]


def layer_patches(
    layers: NDArray[np.floating],
    masks: NDArray[np.bool_],
    rng: np.random.Generator,
    config: RealismConfig,
) -> list[Patches]:
    """Jittered windows of every layer around the overlap of ``masks``."""
    row, col = overlap_centre(masks)
    patches = []
    for layer in layers:
        for _ in range(config.patches_per_layer):
            shift = rng.integers(-config.jitter, config.jitter + 1, size=2)
            centre = (row + int(shift[0]), col + int(shift[1]))
            patches.append(window(layer, centre, config.patch_size))
    return patches


def untouched_centre(masks: NDArray[np.bool_], channel: int, size: int) -> tuple[int, int] | None:
    """Centre of the window nearest the overlap, along bone ``channel`` away from it (the
    upper bone up, the lower bone down: crops have the finger up), that holds no overlap
    pixel and lies inside the crop; ``None`` when the crop ends first."""
    row, col = overlap_centre(masks)
    overlap = np.asarray(masks.all(axis=0))
    step = -1 if channel == 0 else 1
    half = size // 2
    columns = slice(max(col - half, 0), col + half)
    while half <= row <= overlap.shape[0] - half:
        if not overlap[row - half : row + half, columns].any():
            return row, col
        row += step
    return None


def untouched_patches(
    joints: Sequence[EvalJoint],
    layers_of: Callable[[EvalJoint], NDArray[np.floating]],
    config: RealismConfig,
    seed: int,
) -> Patches:
    """Jittered windows of each bone's layer next to the overlap but without it, where a
    separator leaves the bone as it is (``(N, P, P)``)."""
    rng = np.random.default_rng([config.seed, seed])
    patches: list[Patches] = []
    for joint in joints:
        for channel, layer in enumerate(layers_of(joint)):
            centre = untouched_centre(joint.masks, channel, config.patch_size + 2 * config.jitter)
            if centre is None:
                continue
            for _ in range(config.patches_per_layer):
                shift = rng.integers(-config.jitter, config.jitter + 1, size=2)
                moved = (centre[0] + int(shift[0]), centre[1] + int(shift[1]))
                patches.append(window(layer, moved, config.patch_size))
    return _stack(patches, config)


def _own_bone(joint: EvalJoint) -> NDArray[np.floating]:
    """Each bone of the joint as the radiograph shows it, inside its annotated outline."""
    return joint.image[None] * joint.masks


def real_patches(synthetic: Sequence[EvalJoint], config: RealismConfig, seed: int) -> Patches:
    """Patches of the true layers of synthetic overlaps (real bone), ``(N, P, P)``."""
    rng = np.random.default_rng([config.seed, seed])
    patches: list[Patches] = []
    for joint in synthetic:
        patches += layer_patches(joint.truth(), joint.masks, rng, config)
    return _stack(patches, config)


def generated_patches(
    separator: Separator, joints: Sequence[EvalJoint], config: RealismConfig, seed: int
) -> Patches:
    """Patches of ``separator``'s layers on ``joints`` inside the outlines it was given,
    ``(N, P, P)``."""
    rng = np.random.default_rng([config.seed, seed])
    patches: list[Patches] = []
    for joint, output in zip(joints, run_separator(separator, joints), strict=True):
        bone = output.layers.numpy() * joint.given_masks
        patches += layer_patches(bone, joint.masks, rng, config)
    return _stack(patches, config)


def _stack(patches: list[Patches], config: RealismConfig) -> Patches:
    if not patches:
        return np.zeros((0, config.patch_size, config.patch_size), dtype=np.float32)
    return np.stack(patches).astype(np.float32)


class RealismNet(nn.Module):
    """Three 3x3 convolution stages (8-16-32 channels), global mean, one logit: generated.

    About 7 k parameters: enough to see a seam, a missing or doubled bone or a texture
    that is too smooth, and cheap enough to train beside everything else on a shared CPU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 1),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)`` of "generated" for patches ``(B, 1, P, P)``."""
        logits: torch.Tensor = self.body(patches).squeeze(1)
        return logits


def train_classifier(
    real: Patches, generated: Patches, config: RealismConfig, seed: int | None = None
) -> RealismNet:
    """Fit a :class:`RealismNet` (seeded by ``seed``, else the config's); classes weighted to
    count equally."""
    if not len(real) or not len(generated):
        raise ValueError(
            f"need real and generated patches to train on, got {len(real)} and {len(generated)}"
        )
    seed = config.seed if seed is None else seed
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = RealismNet()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    inputs = torch.from_numpy(np.concatenate([real, generated]))[:, None]
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(generated))])
    loss_function = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(real) / len(generated)))
    net.train()
    for _ in range(config.steps):
        batch = torch.from_numpy(rng.integers(0, len(inputs), size=config.batch_size))
        flips = torch.from_numpy(rng.random(config.batch_size) < 0.5)[:, None, None, None]
        # A mirrored bone is as real as the original (left and right hands).
        images = torch.where(flips, inputs[batch].flip(-1), inputs[batch])
        optimiser.zero_grad()
        loss = loss_function(net(images), labels[batch])
        loss.backward()
        optimiser.step()
    return net.eval()


def classify(net: RealismNet, patches: Patches) -> NDArray[np.float64]:
    """Probability of "generated" for each patch."""
    if not len(patches):
        return np.zeros(0)
    with torch.inference_mode():
        return torch.sigmoid(net(torch.from_numpy(patches)[:, None])).double().numpy()


@dataclass(frozen=True)
class TuringResult:
    """One separator's test: the median AUC of its classifiers on held-out patches, each
    classifier's AUC, and the patches with the median classifier's scores."""

    auc: float
    aucs: tuple[float, ...]
    n_train: tuple[int, int]
    n_test: tuple[int, int]
    test_real: Patches
    test_generated: Patches
    scores_real: NDArray[np.float64]
    scores_generated: NDArray[np.float64]

    def report(self) -> dict[str, Any]:
        """JSON-ready: AUC and the patch counts (real, generated) of both sides."""
        return {
            "auc": self.auc,
            "auc_per_classifier": list(self.aucs),
            "auc_min": min(self.aucs),
            "auc_max": max(self.aucs),
            "n_train_real": self.n_train[0],
            "n_train_generated": self.n_train[1],
            "n_test_real": self.n_test[0],
            "n_test_generated": self.n_test[1],
        }


def turing_test(
    separators: Mapping[str, Separator],
    train: tuple[Sequence[EvalJoint], Sequence[EvalJoint]],
    test: tuple[Sequence[EvalJoint], Sequence[EvalJoint]],
    config: RealismConfig | None = None,
) -> dict[str, TuringResult]:
    """Per separator: a classifier trained on ``train`` (real joints, synthetic overlaps of
    the training side), its AUC on ``test`` (the same from held-out joints)."""
    config = config or RealismConfig()
    (train_real, train_synthetic), (test_real, test_synthetic) = train, test
    real = real_patches(train_synthetic, config, seed=0), real_patches(test_synthetic, config, 1)
    return _judge_each(separators, real, (train_real, test_real), config, seeds=(2, 3))


def synthetic_turing_test(
    separators: Mapping[str, Separator],
    train_synthetic: Sequence[EvalJoint],
    test_synthetic: Sequence[EvalJoint],
    config: RealismConfig | None = None,
) -> dict[str, TuringResult]:
    """The test without its population confound: each separator's layers on synthetic
    overlaps against the true layers of the same overlaps, in the same windows.

    On real joints the real and generated patches come from different joints (without
    and with an overlap), which a classifier tells apart even in untouched bone
    (:func:`population_floor`, about 0.72 here), so a perfect separator could not reach
    the goal there. Here both sides are the same bone of the same joints: a separator
    that returned the true layers would score 0.5, and every point above it is the
    separator's own doing. It judges layers on synthetic, not real, overlaps.
    """
    config = config or RealismConfig()
    real = real_patches(train_synthetic, config, seed=0), real_patches(test_synthetic, config, 1)
    # The same seeds as the true layers' patches: the same windows of the same joints.
    return _judge_each(separators, real, (train_synthetic, test_synthetic), config, seeds=(0, 1))


def _judge_each(
    separators: Mapping[str, Separator],
    real: tuple[Patches, Patches],
    joints: tuple[Sequence[EvalJoint], Sequence[EvalJoint]],
    config: RealismConfig,
    seeds: tuple[int, int],
) -> dict[str, TuringResult]:
    """:func:`_judge` per separator: ``real`` (train, test) patches against its layers on
    ``joints`` (train, test), drawn with ``seeds``."""
    results = {}
    for name, separator in separators.items():
        generated = (
            generated_patches(separator, joints[0], config, seeds[0]),
            generated_patches(separator, joints[1], config, seeds[1]),
        )
        results[name] = _judge((real[0], generated[0]), (real[1], generated[1]), config)
    return results


def _judge(
    train: tuple[Patches, Patches], test: tuple[Patches, Patches], config: RealismConfig
) -> TuringResult:
    """``config.classifiers`` classifiers trained on ``train`` (real, generated), their
    median AUC on ``test``."""
    (real_train, generated_train), (real_test, generated_test) = train, test
    if not len(real_test) or not len(generated_test):
        raise ValueError("no held-out patches: the test side has no overlapping joints")
    judged = []
    for index in range(config.classifiers):
        net = train_classifier(real_train, generated_train, config, seed=config.seed + index)
        scores = classify(net, real_test), classify(net, generated_test)
        judged.append((roc_auc(scores[1], scores[0]), scores))
    aucs = [auc for auc, _ in judged]
    # The median classifier (the lower middle one of an even count) shows its scores.
    _, (scores_real, scores_generated) = sorted(judged, key=lambda item: item[0])[
        (len(judged) - 1) // 2
    ]
    return TuringResult(
        float(np.median(aucs)),
        tuple(aucs),
        (len(real_train), len(generated_train)),
        (len(real_test), len(generated_test)),
        real_test,
        generated_test,
        scores_real,
        scores_generated,
    )


def population_floor(
    train: tuple[Sequence[EvalJoint], Sequence[EvalJoint]],
    test: tuple[Sequence[EvalJoint], Sequence[EvalJoint]],
    config: RealismConfig | None = None,
) -> TuringResult:
    """The test on untouched bone: the real joints' own bone next to their overlap
    (``J * M_i``, which every separator keeps there) against the true layers of the
    synthetic overlaps next to theirs. What a perfect separator would still score."""
    config = config or RealismConfig()

    def sides(
        real: Sequence[EvalJoint], synthetic: Sequence[EvalJoint], seed: int
    ) -> tuple[Patches, Patches]:
        return (
            untouched_patches(synthetic, EvalJoint.truth, config, seed),
            untouched_patches(real, _own_bone, config, seed + 2),
        )

    return _judge(sides(*train, seed=4), sides(*test, seed=5), config)


#: The separator that the model with a seam step (``model+<step>``) is paired against.
PAIRED_REFERENCE = "model"


def repeats_summary(
    reports: Sequence[Mapping[str, Any]], seeds: Sequence[int], names: Sequence[str]
) -> dict[str, Any]:
    """The test repeated with other seeds (patches and classifiers drawn anew): per
    separator in ``names`` the median AUC of each repeat (``reports``, from
    :func:`realism_report`) on real joints and on synthetic overlaps, their mean and range,
    and the population floor's. One repeat's median moved by 0.02-0.03 on real joints and
    0.06-0.12 on synthetic overlaps (session 12), more than the margins models were
    compared by; a decision should rest on the mean."""
    if len(reports) != len(seeds) or not reports:
        raise ValueError("one realism report per seed, and at least one")

    def spread(values: list[float]) -> dict[str, Any]:
        return {
            "mean": float(np.mean(values)),
            "min": min(values),
            "max": max(values),
            "per_seed": values,
        }

    summary: dict[str, Any] = {
        "seeds": list(seeds),
        "real": {name: spread([r[name]["auc"] for r in reports]) for name in names},
        "population_floor": spread([r["population_floor"]["auc"] for r in reports]),
        "on_synthetic": {
            name: spread([r["on_synthetic"][name]["auc"] for r in reports]) for name in names
        },
    }
    steps = [name for name in names if name.startswith(f"{PAIRED_REFERENCE}+")]
    if PAIRED_REFERENCE in names and steps and len(reports) > 1:
        summary["paired"] = {
            part: {
                name: paired_difference(
                    summary[part][name]["per_seed"], summary[part][PAIRED_REFERENCE]["per_seed"]
                )
                for name in steps
            }
            for part in ("real", "on_synthetic")
        }
    return summary


def paired_difference(values: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    """Seed by seed ``values - reference`` (the same seeds, so the same real patches and
    classifier seeds): the mean, its standard deviation and the one-sided 95 % upper bound
    of the mean (Student t). Why: one model's AUC moves by 0.01-0.02 from seed to seed, more
    than the steps differ, while the two separators of one seed move together; a decision
    that a step is no worse than the model without it rests on that bound (docs/training.md,
    session 18, where a margin of 0.01 needed about 30 seeds for the synthetic test)."""
    differences = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    if differences.size < 2:
        raise ValueError("a paired difference needs at least two seeds")
    std = float(differences.std(ddof=1))
    quantile = float(student_t.ppf(0.95, differences.size - 1))
    mean = float(differences.mean())
    return {
        "mean": mean,
        "std": std,
        "upper_95": mean + quantile * std / float(np.sqrt(differences.size)),
        "per_seed": differences.tolist(),
    }


def realism_report(
    results: Mapping[str, TuringResult],
    figure: Path | None,
    config: RealismConfig | None = None,
    floor: TuringResult | None = None,
    on_synthetic: Mapping[str, TuringResult] | None = None,
) -> dict[str, Any]:
    """The ``realism`` part of the separation report (``floor``: :func:`population_floor`,
    ``on_synthetic``: :func:`synthetic_turing_test`)."""
    return {
        "method": "CNN real-vs-generated patch classifiers trained on the training side of "
        "the split (one per seed), median AUC on held-out joints (0.5 = indistinguishable; "
        "goal <= 0.65)",
        "config": asdict(config or RealismConfig()),
        **{name: result.report() for name, result in results.items()},
        **({"population_floor": floor.report()} if floor is not None else {}),
        **(
            {"on_synthetic": {name: result.report() for name, result in on_synthetic.items()}}
            if on_synthetic is not None
            else {}
        ),
        "figure": str(figure) if figure is not None else None,
    }
