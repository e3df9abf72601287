"""One separation evaluation: joints, separators, the report, the Turing test, figures.

The plain function behind ``blsnode evaluate --task separation``
(the command parses the options and loads the model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from blsgan_core.data import JointRecord
from blsgan_core.mask_thresholds import SEPARATION_CONTACT_PX, SEPARATION_THRESHOLD
from blsgan_core.segment import Segmenter
from blsgan_core.synthetic import SyntheticConfig
from trainer import plots as figures
from trainer.datasets import SampleStore
from trainer.evaluation.predicted_masks import with_predicted_masks
from trainer.evaluation.realism import (
    RealismConfig,
    population_floor,
    realism_report,
    repeats_summary,
    synthetic_turing_test,
    turing_test,
)
from trainer.evaluation.separation import (
    EvalJoint,
    Separator,
    identity_separator,
    real_joints,
    synthetic_joints,
    trivial_separator,
)
from trainer.evaluation.separation_report import evaluate_separation
from trainer.model_card import recorded_split
from trainer.validation import extremes

# Repeats of the realism test are this far apart in seed: each draws its classifiers with
# seeds seed, seed + 1, ... (RealismConfig.classifiers of them, 5), so repeats share none.
REPEAT_SEED_STEP = 10


def shift_label(low: int, high: int) -> str:
    """The name of a set of synthetic overlaps in the report."""
    return f"shifts {low}-{high} px"


def default_shift_ranges() -> list[tuple[int, int]]:
    """The training range of synthetic shifts and one as wide again beyond it."""
    trained = SyntheticConfig()
    span = trained.max_shift - trained.min_shift + 1
    return [
        (trained.min_shift, trained.max_shift),
        (trained.max_shift + 1, trained.max_shift + span),
    ]


def measure(
    records: Sequence[JointRecord],
    training_records: Sequence[JointRecord] | None,
    models: Mapping[str, Separator],
    *,
    segmenter: Segmenter | None,
    synthetic_seed: int,
    shift_ranges: Sequence[tuple[int, int]],
    cap: int | None,
    realism: bool,
    plots: Path | None,
    realism_steps: int | None = None,
    realism_seed: int = 0,
    realism_repeats: int = 1,
    hidden_edge_sigma: float = 0.0,
    separation_threshold: float = SEPARATION_THRESHOLD,
    contact_px: int = SEPARATION_CONTACT_PX,
) -> dict[str, Any]:
    """The report of ``models`` beside the two baselines on ``records`` (see the runner).

    ``separation_threshold``, ``contact_px``: with a ``segmenter``, how the masks the
    separators are given widen towards the other bone
    (:func:`blsgan_core.segment.predict.separation_masks`; the node's unless measuring others).

    ``hidden_edge_sigma``: ``SyntheticConfig.hidden_edge_sigma`` of the synthetic overlaps
    measured (0: Eq. 1's hard edge, the paper's composition).

    ``training_records`` (the other side of the split) train the realism classifier;
    without them the Turing test is skipped and the report says why. ``realism_repeats``
    > 1 repeats it with seeds ``realism_seed + 10``, ``+ 20``, ... and adds their summary
    (:func:`repeats_summary`) as ``realism.repeats``; figures come from the first.
    """
    if realism_repeats < 1:
        raise ValueError(f"realism_repeats must be >= 1, got {realism_repeats}")
    store = SampleStore()

    def node_path(joints: list[EvalJoint], segmenter: Segmenter) -> list[EvalJoint]:
        return with_predicted_masks(
            joints, segmenter, separation_threshold=separation_threshold, contact_px=contact_px
        )

    def joints_of(
        chosen: Sequence[JointRecord], ranges: Sequence[tuple[int, int]]
    ) -> tuple[list[EvalJoint], dict[str, list[EvalJoint]]]:
        real = real_joints(chosen, store, limit=cap)
        synthetic = {
            shift_label(low, high): synthetic_joints(
                chosen,
                store,
                seed=synthetic_seed,
                options=SyntheticConfig(
                    min_shift=low, max_shift=high, hidden_edge_sigma=hidden_edge_sigma
                ),
                limit=cap,
            )
            for low, high in ranges
        }
        if segmenter is not None:
            real = node_path(real, segmenter)
            synthetic = {label: node_path(part, segmenter) for label, part in synthetic.items()}
        return real, synthetic

    separators = {**models, "trivial": trivial_separator, "identity": identity_separator}
    real, synthetic = joints_of(records, shift_ranges)
    report = evaluate_separation(real, synthetic, separators)
    report["synthetic_seed"] = synthetic_seed
    report["synthetic_hidden_edge_sigma"] = hidden_edge_sigma
    if segmenter is not None:
        report["segmenter"] = segmenter_note(segmenter, records)
        report["separation_masks"] = {"threshold": separation_threshold, "contact_px": contact_px}
    if not realism:
        report["realism"] = {"skipped": "not asked for (--no-realism)"}
    elif training_records is None:
        report["realism"] = {
            "skipped": "needs --split val: the classifier trains on the other side"
        }
    else:
        # Real bone for the classifier: synthetic overlaps of the training range.
        trained = SyntheticConfig()
        ranges = [(trained.min_shift, trained.max_shift)]
        train_real, train_synthetic = joints_of(training_records, ranges)
        _, test_synthetic = joints_of(records, ranges)
        train = (train_real, next(iter(train_synthetic.values())))
        test = (real, next(iter(test_synthetic.values())))
        seeds = [realism_seed + REPEAT_SEED_STEP * repeat for repeat in range(realism_repeats)]
        parts = [
            realism_part(
                separators,
                train,
                test,
                RealismConfig(seed=seed, **({"steps": realism_steps} if realism_steps else {})),
                plots if seed == realism_seed else None,
            )
            for seed in seeds
        ]
        report["realism"] = parts[0]
        if realism_repeats > 1 and "skipped" not in parts[0]:
            report["realism"]["repeats"] = repeats_summary(parts, seeds, list(separators))
    if plots is not None:
        folder = Path(plots)
        figures.separation_by_overlap(report, folder / "separation_by_overlap.png")
        examples = extremes(next(iter(synthetic.values()), [])) + extremes(real)
        if examples:
            figures.example_panel(examples, models[next(iter(models))], folder / "examples.png")
    return report


def realism_part(
    separators: Mapping[str, Separator],
    train: tuple[list[EvalJoint], list[EvalJoint]],
    test: tuple[list[EvalJoint], list[EvalJoint]],
    config: RealismConfig,
    plots: Path | None,
) -> dict[str, Any]:
    """The Turing test of the report (and its figure in ``plots``), or why it was skipped."""
    if not all((*train, *test)):
        reason = "each side of the split needs real overlapping joints and synthetic overlaps"
        return {"skipped": reason}
    results = turing_test(separators, train, test, config)
    figure = None
    if plots is not None:
        figure = figures.realism_panel(results, Path(plots) / "realism_patches.png")
    floor = population_floor(train, test, config)
    on_synthetic = synthetic_turing_test(separators, train[1], test[1], config)
    return realism_report(results, figure, config, floor, on_synthetic)


def segmenter_note(segmenter: Segmenter, records: Sequence[JointRecord]) -> dict[str, Any]:
    """Which segmenter made the masks, and how many evaluated joints it never trained on."""
    held_out = set(recorded_split(segmenter.metadata).get("val_cases", []))
    cases = {record.case for record in records}
    return {
        "version": segmenter.version,
        "n_cases": len(cases),
        "n_cases_held_out_from_segmenter": len(cases & held_out),
    }
