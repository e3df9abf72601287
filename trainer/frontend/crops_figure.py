"""A side-by-side picture: crops the pipeline cuts from radiographs next to published crops.

    .venv/bin/python -m trainer.frontend.crops_figure --out docs/frontend-crops.png

Left: for a few validation radiographs, the shipped localiser's joints cut into crops
(MCP2-MCP5), the shipped segmenter's masks outlined. Right: published joint crops of
the segmenter's validation split with their annotated masks outlined. Upper bone red,
lower bone blue.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from PIL import Image
from scipy import ndimage

from blsgan_core.crops import crop_joints, crop_side
from blsgan_core.intensity import normalise_intensity
from blsgan_core.joints import load_localiser, locate
from blsgan_core.segment import load_segmenter, segment_masks
from trainer.frontend.hand_data import read_grey, read_landmarks_csv, select_split
from trainer.frontend.joint_data import load_joint, partition_valid, read_manifest
from trainer.frontend.joint_data import select_split as select_joint_split

COLOURS = (np.array([1.0, 0.2, 0.2]), np.array([0.3, 0.5, 1.0]))


def outlined(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """RGB of a crop with the outline of each mask drawn in its colour."""
    rgb = np.repeat(normalise_intensity(image)[..., None], 3, axis=2)
    for mask, colour in zip(masks, COLOURS, strict=True):
        edge = mask & ~ndimage.binary_erosion(mask, iterations=2)
        rgb[edge] = colour
    return rgb


@click.command()
@click.option(
    "--hands",
    "hands_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/hand_radiographs"),
    show_default=True,
)
@click.option(
    "--joints",
    "joints_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/mcp_joints"),
    show_default=True,
)
@click.option("--rows", type=int, default=3, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(hands_dir: Path, joints_dir: Path, rows: int, out: Path) -> None:
    """Write the comparison picture."""
    localiser, segmenter = load_localiser(), load_segmenter()
    records = select_split(read_landmarks_csv(hands_dir / "landmarks.csv"), "val")[:rows]
    ours = []
    for record in records:
        image = read_grey(record.file)
        hand = locate(image, localiser)[0]
        crops, _ = crop_joints(image, hand.joints[1:], crop_side(hand.mcp2_mcp3_px))
        masks = segment_masks(crops, segmenter)
        ours.append(np.concatenate([outlined(c, m) for c, m in zip(crops, masks, strict=True)], 1))
    joints, _ = partition_valid(
        select_joint_split(read_manifest(joints_dir / "manifest.json"), "val")[::7][: 4 * rows]
    )
    theirs = []
    for start in range(0, 4 * rows, 4):
        loaded = [load_joint(r) for r in joints[start : start + 4]]
        theirs.append(np.concatenate([outlined(i, m) for i, m in loaded], 1))
    gap = np.ones((256 * rows, 12, 3))
    picture = np.concatenate([np.concatenate(ours, 0), gap, np.concatenate(theirs, 0)], 1)
    Image.fromarray((picture * 255).astype(np.uint8)).resize(
        (picture.shape[1] // 2, picture.shape[0] // 2), Image.Resampling.LANCZOS
    ).quantize(colors=96).save(out, optimize=True)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
