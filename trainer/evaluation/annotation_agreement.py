"""How well the annotated overlaps agree with themselves: one follow-up's masks moved onto the next.

    python -m trainer.evaluation.annotation_agreement --split val

The segmenter's overlap Dice (issue 13's target 0.75) is measured against one annotation
per image. How reproducible is that annotation? The data hold follow-ups of most joints,
each annotated on its own: the same two bones, months apart. Each bone of the earlier
image is registered rigidly onto the later one (:func:`blsgan_core.registration.register_bone`
on the raw image inside the bone's outline, the overlap and 4 px around it left out of
the match so that the hidden outline being compared does not steer it), its annotated
amodal mask moved by that bone's motion, and the moved pair scored against the later
image's own annotation exactly as the segmenter is (:class:`Tally`: per-bone Dice,
overlap Dice over the images with >= 20 annotated overlap pixels, by size).

What that number holds besides annotation noise: registration error (the per-bone Dice
of the moved masks shows how much) and real change between the visits (joint space
narrowing, erosion, a finger held differently), so it is a lower bound of how well two
annotations of one image would agree. Beside it in the same run, on the same later
images: the segmenter's masks, the earlier annotation not moved at all (what the
registration adds), and the control for registration and change: the segmenter's masks
of the earlier image moved by the same motions against its own masks of the later one
(an outline drawn the same way at both visits; its overlap bins are of the segmenter's
overlaps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from blsgan_core.data import JointRecord, JointSample, load_sample
from blsgan_core.registration import RigidRegistration, apply_motion, register_bone
from blsgan_core.segment import Segmenter, load_segmenter, segment_masks
from trainer.evaluation.cli_options import manifest_option
from trainer.evaluation.jsn import BONES, follow_up_pairs
from trainer.evaluation.segmentation import OVERLAP_MIN_PX, Tally, dice_cells, number
from trainer.frontend.joint_data import partition_valid, read_manifest, select_split

# Pixels around the later image's annotated overlap that the registration ignores.
OVERLAP_MARGIN_PX = 4


def bone_motions(earlier: JointSample, later: JointSample) -> list[RigidRegistration]:
    """Each bone's rigid motion from ``earlier`` onto ``later`` (upper, lower), registered
    on the raw image inside the bone's outline, ``later``'s overlap and its margin left out."""
    overlap = later.upper & later.lower
    region = (
        ~ndimage.binary_dilation(overlap, iterations=OVERLAP_MARGIN_PX) if overlap.any() else None
    )
    motions = []
    for bone in BONES:
        own_earlier, own_later = getattr(earlier, bone), getattr(later, bone)
        motions.append(
            register_bone(
                np.where(own_earlier, earlier.image, 0.0),
                own_earlier,
                np.where(own_later, later.image, 0.0),
                own_later,
                region=region,
            )
        )
    return motions


def move_masks(masks: NDArray[np.bool_], motions: Sequence[RigidRegistration]) -> NDArray[np.bool_]:
    """Masks ``(2, H, W)`` of the earlier visit, each moved by its bone's motion."""
    return np.stack(
        [
            apply_motion(mask.astype(np.float32), motion, order=1) >= 0.5
            for mask, motion in zip(masks, motions, strict=True)
        ]
    )


def moved_annotation(earlier: JointSample, later: JointSample) -> NDArray[np.bool_]:
    """``earlier``'s amodal masks ``(2, H, W)``, each bone moved by its own rigid motion
    onto ``later``."""
    return move_masks(earlier.masks, bone_motions(earlier, later))


MOVED = "annotation moved from the earlier visit"
UNMOVED = "earlier annotation, unmoved"
SELF = "segmenter's masks moved from the earlier visit, against its own on the later one"


def agreement(
    pairs: Sequence[tuple[JointRecord, JointRecord]], segmenter: Segmenter | None
) -> dict[str, Any]:
    """The segmentation summary of each answer on the later image of every pair.

    Against the later image's annotation: the earlier annotation moved, and unmoved, and
    with a ``segmenter`` its masks of the later image. Then the control of what two
    visits can agree on when the outline is drawn the same way both times: the
    segmenter's masks of the earlier image, moved by the same motions, against its own
    masks of the later image.
    """
    tallies = {MOVED: Tally(), UNMOVED: Tally()}
    if segmenter is not None:
        tallies[f"segmenter {segmenter.version}"] = Tally()
        tallies[SELF] = Tally()
    for earlier_record, later_record in pairs:
        earlier, later = load_sample(earlier_record), load_sample(later_record)
        motions = bone_motions(earlier, later)
        truth = later.masks
        tallies[MOVED].add(move_masks(earlier.masks, motions), truth)
        tallies[UNMOVED].add(earlier.masks, truth)
        if segmenter is not None:
            predicted = segment_masks(np.stack([earlier.image, later.image]), segmenter)
            tallies[f"segmenter {segmenter.version}"].add(predicted[1], truth)
            tallies[SELF].add(move_masks(predicted[0], motions), predicted[1])
    return {name: tally.summary() for name, tally in tallies.items()}


def outlined(image: NDArray[np.floating], masks: NDArray[np.bool_]) -> NDArray[np.float32]:
    """RGB ``image`` with the overlap tinted red, the upper outline green, the lower blue."""
    rgb = np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=-1)
    overlap = masks[0] & masks[1]
    rgb[overlap] = rgb[overlap] * 0.5 + np.array([0.5, 0.0, 0.0], np.float32)
    for channel, mask in ((1, masks[0]), (2, masks[1])):
        edge = mask & ~ndimage.binary_erosion(mask)
        rgb[edge] = 0.0
        rgb[edge, channel] = 1.0
    return rgb


def agreement_figure(
    pairs: Sequence[tuple[JointRecord, JointRecord]], path: Path, rows: int = 5
) -> Path:
    """Per row, for the first ``rows`` pairs whose later image has an annotated overlap:
    the earlier visit, the later one, and the earlier annotation moved onto the later image."""
    panels = []
    for earlier_record, later_record in pairs:
        earlier, later = load_sample(earlier_record), load_sample(later_record)
        if int((later.upper & later.lower).sum()) < OVERLAP_MIN_PX:
            continue
        moved = moved_annotation(earlier, later)
        panels.append(
            np.concatenate(
                [
                    outlined(earlier.image, earlier.masks),
                    outlined(later.image, later.masks),
                    outlined(later.image, moved),
                ],
                axis=1,
            )
        )
        if len(panels) == rows:
            break
    if not panels:
        raise ValueError("no pair with an annotated overlap on its later image")
    grid = np.clip(np.concatenate(panels, axis=0), 0.0, 1.0)
    Image.fromarray((grid * 255).astype(np.uint8)).save(path)
    return path


def agreement_table(answers: dict[str, Any]) -> str:
    """Markdown: one row per answer, per-bone and overlap Dice, area ratio, size bins."""
    lines = [
        "| answer | Dice upper | Dice lower | overlap Dice | pooled | area ratio (median) "
        "| overlap Dice by size (20-100, 100-400, 400-1000, >=1000 px) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in answers.items():
        bins = ", ".join(
            f"{number(b['dice_overlap'])} ({b['n_images']})" for b in row["by_overlap_size"]
        )
        lines.append(f"| {name} | {dice_cells(row)} | {bins} |")
    return "\n".join(lines)


@click.command()
@manifest_option
@click.option(
    "--split",
    type=click.Choice(["all", "train", "val"]),
    default="val",
    show_default=True,
    help="The segmenter's split by joint (15 %, seed 0).",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Segmenter checkpoint (default: the shipped one).",
)
@click.option("--limit", type=int, default=0, help="Only the first N follow-up pairs.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option(
    "--figure",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the first pairs with an overlap here (earlier, later, earlier moved).",
)
def main(
    manifest: Path, split: str, model: Path | None, limit: int, threads: int, figure: Path | None
) -> None:
    """Print the agreement of follow-up annotations as JSON, then one row per answer."""
    torch.set_num_threads(threads)
    valid, _ = partition_valid(select_split(read_manifest(manifest), split))
    pairs = follow_up_pairs(valid)
    if limit:
        pairs = pairs[:limit]
    if not pairs:
        raise click.UsageError("no follow-up pairs in this split")
    report: dict[str, Any] = {
        "split": split,
        "n_pairs": len(pairs),
        "answers": agreement(pairs, load_segmenter(model)),
    }
    click.echo(json.dumps(report))
    click.echo(agreement_table(report["answers"]))
    if figure is not None:
        click.echo(f"figure: {agreement_figure(pairs, figure)}")


if __name__ == "__main__":
    main()
