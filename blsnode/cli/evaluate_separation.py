"""``blsnode evaluate --task separation``: the runner, its options and its text report.

:func:`run_separation_evaluation` has the signature of the runners of
``blsnode/cli/evaluate.py`` (``options -> report``); :data:`SEPARATION_OPTIONS` are the
click options it reads beyond the shared ``--manifest``, ``--model``, ``--split`` and
``--seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blsgan_core.mask_thresholds import SEPARATION_CONTACT_PX, SEPARATION_THRESHOLD
from blsgan_core.seam_modes import BLEND_MODES
from trainer.splits import pick_split

if TYPE_CHECKING:
    from blsgan_core.model import BLSGANModel
    from trainer.evaluation.separation import Separator

DEFAULT_VALIDATION_FRACTION = 0.2  # the presets' split
DEFAULT_SYNTHETIC_SEED = 1234  # the presets' validation.synthetic_seed


def _manifests(value: Path | Sequence[Path] | None) -> list[Path]:
    if not value:
        raise click.UsageError("--task separation needs --manifest PATH")
    return [value] if isinstance(value, Path) else list(value)


def run_separation_evaluation(options: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a BLS-GAN checkpoint on a manifest's joints.

    ``options``: ``manifest`` (path or paths), ``model`` (the checkpoint, as the command
    chose it), ``split`` (all/train/val) and ``seed`` of the joint-disjoint split, and
    optionally ``validation_fraction``, ``synthetic_seed``, ``shift_ranges`` (pairs of
    min/max px per bone; default the training range and one beyond it),
    ``hidden_edge_sigma`` (``SyntheticConfig.hidden_edge_sigma`` of the synthetic
    overlaps; default 0, Eq. 1's hard edge), ``masks``
    (annotated/predicted), ``segmenter`` (its checkpoint, needed for predicted masks),
    ``separation_threshold`` and ``separation_contact_px`` (how the predicted masks the
    separators get widen towards the other bone; the node's),
    ``realism`` (run the Turing test, needs split val), ``realism_steps``, ``realism_seed``,
    ``realism_repeats``, ``max_images``, ``device``, ``plots`` (folder for PNG figures) and
    ``boundary_blend``
    (:data:`BLEND_CHOICES`: as the checkpoint says, a mode of
    :data:`blsgan_core.seam_modes.BLEND_MODES`, or ``compare``: the model without a seam step
    as ``model`` and with each other step as ``model+<step>``, in one run; several steps
    likewise with those).
    """
    import torch

    from blsgan_core.data import read_manifests, split_by_case
    from blsgan_core.model import load_model
    from blsgan_core.segment import load_segmenter
    from trainer.evaluation.separation_run import default_shift_ranges, measure

    manifests = _manifests(options.get("manifest"))
    split = options.get("split", "all")
    fraction = options.get("validation_fraction") or DEFAULT_VALIDATION_FRACTION
    contents = read_manifests(manifests)
    halves = split_by_case(
        list(contents.records), validation_fraction=fraction, seed=options.get("seed", 0)
    )
    records = pick_split(list(contents.records), split, lambda _: halves)
    model_path = options["model"]
    device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(Path(model_path), device=device)
    mask_source = options.get("masks") or "annotated"
    segmenter = None
    if mask_source == "predicted":
        if options.get("segmenter") is None:
            raise ValueError("--masks predicted needs the segmenter's checkpoint")
        segmenter = load_segmenter(Path(options["segmenter"]))
    report = measure(
        records,
        halves[0] if split == "val" else None,
        blend_separators(model, device, options.get("boundary_blend") or "config"),
        segmenter=segmenter,
        synthetic_seed=options.get("synthetic_seed", DEFAULT_SYNTHETIC_SEED),
        shift_ranges=options.get("shift_ranges") or default_shift_ranges(),
        hidden_edge_sigma=options.get("hidden_edge_sigma") or 0.0,
        separation_threshold=options.get("separation_threshold") or SEPARATION_THRESHOLD,
        contact_px=options.get("separation_contact_px", SEPARATION_CONTACT_PX),
        cap=options.get("max_images"),
        realism=options.get("realism", True),
        realism_steps=options.get("realism_steps"),
        realism_seed=options.get("realism_seed") or 0,
        realism_repeats=options.get("realism_repeats") or 1,
        plots=options.get("plots"),
    )
    return {
        **report,
        "model": {"path": str(model_path), "version": model.version},
        "masks": mask_source,
        "split": split,
        "seed": options.get("seed", 0),
        "manifests": [str(path) for path in manifests],
        "n_rejected": len(contents.rejected),
    }


BLEND_CHOICES = ("config", *BLEND_MODES, "compare")


def blend_separators(
    model: BLSGANModel, device: str, choice: str | Sequence[str]
) -> dict[str, Separator]:
    """The model's separators for ``--boundary-blend`` ``choice`` (see :data:`BLEND_CHOICES`).

    Several steps (the option given more than once) measure the model with each in one run,
    named as ``compare`` names them: their realism repeats then share seeds, patches and
    real bone, so that two steps can be compared seed by seed.
    """
    from trainer.evaluation.separation import model_separator

    choices = (choice,) if isinstance(choice, str) else tuple(choice) or ("config",)
    for one in choices:
        if one not in BLEND_CHOICES:
            raise ValueError(f"boundary_blend must be one of {BLEND_CHOICES}, got {one!r}")
    if len(choices) > 1 and not set(choices) <= set(BLEND_MODES):
        raise ValueError(f"several seam steps must each be one of {BLEND_MODES}, got {choices}")
    if choices == ("compare",):
        choices = BLEND_MODES
    if len(choices) > 1:
        return {
            "model" if mode == "off" else f"model+{mode}": model_separator(
                model, device, boundary_blend=mode
            )
            for mode in dict.fromkeys(choices)
        }
    blend = None if choices[0] == "config" else choices[0]
    return {"model": model_separator(model, device, boundary_blend=blend)}


def render_separation(data: dict[str, Any]) -> str:
    """The report as text: one block per protocol, one line per separator."""

    def value(part: dict[str, Any], key: str, digits: str = ".2f") -> str:
        # Reports written before a measure existed lack its key: shown as not measured.
        mean = part.get(key, {}).get("mean")
        return "-" if mean is None else format(mean, digits)

    lines = [
        f"model {data['model']['version']}, split {data['split']}, masks {data['masks']}, "
        f"{data['n_images']} joints ({data['split_note']})"
    ]
    real = data.get("real")
    if real is not None:
        lines.append(f"real overlapping joints: {real['n_images']}")
        for name in data["separators"]:
            part = real[name]
            lines.append(
                f"  {name:<11} overlap psnr {value(part, 'overlap_psnr')} dB  "
                f"bones psnr {value(part, 'bones_psnr')} dB  "
                f"whole crop {value(part, 'whole_crop_psnr')} dB  "
                f"k {value(part, 'k', '.3f')} (r {_r(part)})"
            )
    for label, part_set in data["synthetic"].items():
        lines.append(f"synthetic overlaps, {label}: {part_set['n_images']}")
        for name in data["separators"]:
            part = part_set[name]
            lines.append(
                f"  {name:<11} layer psnr {value(part, 'layer_psnr')} dB  "
                f"detail psnr {value(part, 'detail_psnr')} dB  "
                f"seam ratio {value(part, 'seam_ratio')}  "
                f"other-bone leak {value(part, 'other_bone_leak')}  k error "
                f"{value(part, 'k_abs_error', '.3f')} (r {_r(part)})"
            )
            if "overlap_dice" in part:
                lines.append(
                    f"  {'':<11} given masks: overlap dice {value(part, 'overlap_dice', '.3f')}, "
                    f"layer psnr in the true or given overlap "
                    f"{value(part, 'either_overlap_layer_psnr')} dB"
                )
    realism = data.get("realism", {})
    if "skipped" in realism:
        lines.append(f"realism: skipped, {realism['skipped']}")
    else:
        aucs = ", ".join(f"{name} {realism[name]['auc']:.3f}" for name in data["separators"])
        lines.append(f"realism classifier AUC (goal <= 0.65): {aucs}{floor_text(realism)}")
        on_synthetic = realism.get("on_synthetic")
        if on_synthetic:
            aucs = ", ".join(f"{name} {on_synthetic[name]['auc']:.3f}" for name in on_synthetic)
            lines.append(f"  on synthetic overlaps, against their true layers (floor 0.5): {aucs}")
        lines += repeats_lines(realism.get("repeats"))
    return "\n".join(lines)


def repeats_lines(repeats: dict[str, Any] | None) -> list[str]:
    """The mean and range of the realism AUCs over the repeats, when there were any."""
    if not repeats:
        return []

    def spread(part: dict[str, Any]) -> str:
        return f"{part['mean']:.3f} ({part['min']:.3f}-{part['max']:.3f})"

    def each(parts: dict[str, Any]) -> str:
        return ", ".join(f"{name} {spread(part)}" for name, part in parts.items())

    lines = [
        f"realism over seeds {repeats['seeds']}, mean (range): {each(repeats['real'])}; "
        f"floor {spread(repeats['population_floor'])}",
        f"  on synthetic overlaps: {each(repeats['on_synthetic'])}",
    ]
    for part, label in (("real", "real joints"), ("on_synthetic", "synthetic overlaps")):
        for name, paired in (repeats.get("paired") or {}).get(part, {}).items():
            lines.append(
                f"  paired against model, {label}: {name} {paired['mean']:+.4f} "
                f"(sd {paired['std']:.4f}, one-sided 95 % bound {paired['upper_95']:+.4f})"
            )
    return lines


def floor_text(realism: dict[str, Any]) -> str:
    """The population floor beside the separators' AUCs, when the report has one."""
    floor = realism.get("population_floor")
    return "" if floor is None else f"; untouched bone (population floor) {floor['auc']:.3f}"


def _r(part: dict[str, Any]) -> str:
    r = part.get("k_pearson_r")
    return "-" if r is None else f"{r:.2f}"


SEPARATION_OPTIONS: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
    click.option(
        "--validation-fraction",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=DEFAULT_VALIDATION_FRACTION,
        show_default=True,
        help="Separation: fraction of joints in the validation split (as in training).",
    ),
    click.option(
        "--masks",
        type=click.Choice(("annotated", "predicted")),
        default="annotated",
        show_default=True,
        help="Separation: the manifest's masks, or the promoted segmenter's (the node's path).",
    ),
    click.option(
        "--separation-threshold",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=SEPARATION_THRESHOLD,
        show_default=True,
        help="Separation, --masks predicted: the segmenter's probability to which BLS-GAN's "
        "masks widen near the other bone (the node's; the outlines it shows stay at 0.5).",
    ),
    click.option(
        "--separation-contact-px",
        type=click.IntRange(0, 16),
        default=SEPARATION_CONTACT_PX,
        show_default=True,
        help="Separation, --masks predicted: how far from the other bone's outline that "
        "widening reaches (px, the node's).",
    ),
    click.option(
        "--shift-range",
        "shift_ranges",
        type=(click.IntRange(min=0), click.IntRange(min=0)),
        multiple=True,
        help="Separation: MIN MAX px per bone of a set of synthetic overlaps (repeatable; "
        "default the training range 1-8 and 9-16 beyond it).",
    ),
    click.option(
        "--synthetic-hidden-edge-sigma",
        "hidden_edge_sigma",
        type=click.FloatRange(min=0.0, max=8.0),
        default=0.0,
        show_default=True,
        help="Separation: SyntheticConfig.hidden_edge_sigma of the synthetic overlaps (px; "
        "0: Eq. 1's hard edge, the paper's composition). Not the realism test's real bone.",
    ),
    click.option(
        "--realism-steps",
        type=click.IntRange(min=1),
        help="Separation: training steps of each realism classifier (default: RealismConfig's).",
    ),
    click.option(
        "--realism-seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Separation: seed of the realism test (patch jitter; classifiers seed, seed+1, "
        "...). Another seed repeats the test to show how much its AUCs move.",
    ),
    click.option(
        "--realism-repeats",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Separation: run the realism test N times (seeds --realism-seed, +10, +20, ...) "
        "and report the mean and range of their AUCs; compare models by the mean.",
    ),
    click.option(
        "--realism/--no-realism",
        default=True,
        show_default=True,
        help="Separation: train the real-vs-generated patch classifier (with --split val).",
    ),
    click.option(
        "--synthetic-seed",
        type=int,
        default=DEFAULT_SYNTHETIC_SEED,
        show_default=True,
        help="Separation: seed of the synthetic overlaps.",
    ),
    click.option(
        "--boundary-blend",
        type=click.Choice(BLEND_CHOICES),
        multiple=True,
        help="Separation: the seam step of the layers (not the paper's): as the checkpoint "
        "says (config, the default), one of the steps listed, compare (the model with each, "
        "in one run), or several steps by repeating the option (the model with those).",
    ),
    click.option("--max-images", type=click.IntRange(min=1), help="Separation: cap per protocol."),
    click.option("--device", help="Separation: torch device (default cuda if present)."),
    click.option(
        "--plots",
        type=click.Path(file_okay=False, path_type=Path),
        help="Separation: write metrics-by-overlap and example PNGs here.",
    ),
]


def separation_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with :data:`SEPARATION_OPTIONS`."""
    for option in reversed(SEPARATION_OPTIONS):
        function = option(function)
    return function
