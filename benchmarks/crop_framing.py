"""Adult joint crops vs the localiser's crops of children: joint-space centre and bone widths.

    .venv/bin/python benchmarks/crop_framing.py --json > runs/crop_framing.json

Measures (``trainer.evaluation.framing``) three sets of crops the same way:

1. ``adults-published``: every valid crop of ``mcp_joints`` (adults with RA, cut by
   the BLS-GAN authors), on its annotated masks;
2. ``children-rule``: crops of MCP2-MCP5 of the atlas validation hands cut by the
   node's crop rule (``crop_side``, ``joint_centres``) from the *annotated* landmarks,
   on the shipped segmenter's masks: the rule alone, no localiser error;
3. ``children-localiser``: the same hands through the shipped localiser (the node's
   path), on the shipped segmenter's masks.

If the rule carries over to adults, the joint space sits as near the centre in (2) and
(3) as in (1); the bone widths say how differently the crops are zoomed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from blsgan_core.crops import crop_joints, crop_side
from blsgan_core.data import read_mask
from blsgan_core.joints import Joint, load_localiser, locate
from blsgan_core.joints.anatomy import (
    AXIS_INDICES,
    JOINT_NAMES,
    MCP_INDICES,
    axis_bearings,
    joint_centres,
    mcp2_mcp3_distance,
)
from blsgan_core.segment import load_segmenter, segment_masks
from trainer.evaluation.framing import summarise_framing
from trainer.frontend.hand_data import LandmarkRecord, read_grey, read_landmarks_csv, select_split
from trainer.frontend.joint_data import partition_valid, read_manifest


def adult_masks(joints_dir: Path) -> Iterator[np.ndarray]:
    """Annotated masks of every valid published crop."""
    valid, _ = partition_valid(read_manifest(joints_dir / "manifest.json"))
    for record in valid:
        yield np.stack([read_mask(record.upper), read_mask(record.lower)])


def annotated_joints(record: LandmarkRecord) -> tuple[list[Joint], float]:
    """MCP2-MCP5 of a hand from its landmarks, by the localiser's own rule."""
    mcp, tips = record.points[list(MCP_INDICES)], record.points[list(AXIS_INDICES)]
    centres, bearings = joint_centres(mcp, tips), axis_bearings(mcp, tips)
    joints = [
        Joint(name, float(x), float(y), float(angle), 1.0)
        for name, (x, y), angle in zip(JOINT_NAMES, centres, bearings, strict=True)
    ]
    return joints[1:], mcp2_mcp3_distance(mcp)


def children_masks(records: list[LandmarkRecord], use_localiser: bool) -> Iterator[np.ndarray]:
    """Segmenter masks of MCP2-MCP5 crops of the atlas hands."""
    localiser, segmenter = load_localiser(), load_segmenter()
    for record in records:
        image = read_grey(record.file)
        if use_localiser:
            hand = locate(image, localiser)[0]
            joints, size = list(hand.joints[1:]), hand.mcp2_mcp3_px
        else:
            joints, size = annotated_joints(record)
        crops, _ = crop_joints(image, joints, crop_side(size))
        yield from segment_masks(crops, segmenter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=Path, default=Path("../shared/data/hand_radiographs"))
    parser.add_argument("--joints", type=Path, default=Path("../shared/data/mcp_joints"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="One JSON object instead of lines.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hands = select_split(read_landmarks_csv(args.hands / "landmarks.csv"), "val")
    reports = [
        summarise_framing(adult_masks(args.joints), "adults-published"),
        summarise_framing(children_masks(hands, use_localiser=False), "children-rule"),
        summarise_framing(children_masks(hands, use_localiser=True), "children-localiser"),
    ]
    if args.json:
        print(json.dumps(reports, indent=1))
        return
    for report in reports:
        dy, width = report["dy"], report["lower_width"]
        print(
            f"{report['crops']}: n={report['n_measured']} joint space dy "
            f"{dy['mean'] * 256:+.1f} +- {dy['sd'] * 256:.1f} px (of 256), median offset "
            f"{report['offset_px_256_median']:.1f} px, centred (<= 5 % of side) "
            f"{report['centred_fraction']:.2f}; metacarpal head width {width['mean']:.2f} "
            f"+- {width['sd']:.2f} of the side"
        )


if __name__ == "__main__":
    main()
