"""One visit's annotation moved onto the next: the registration follows each bone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from blsgan_core.data import JointSample, load_sample
from trainer.evaluation import annotation_agreement
from trainer.evaluation.annotation_agreement import MOVED, UNMOVED, agreement, moved_annotation
from trainer.evaluation.segmentation import Tally
from trainer.frontend.joint_data import read_manifest

SHIFT = (3, -2)  # rows, columns


def shifted(array: np.ndarray, fill: float | bool) -> np.ndarray:
    """``array`` moved by ``SHIFT`` whole pixels, ``fill`` where nothing moved in."""
    out = np.full_like(array, fill)
    (dy, dx), (h, w) = SHIFT, array.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = array[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.fixture(scope="module")
def records(mcp_joints_dir: Path) -> list:
    return sorted(read_manifest(mcp_joints_dir / "manifest.json"), key=lambda r: -r.overlap_px)


@pytest.fixture(scope="module")
def overlapping(records: list) -> JointSample:
    """A joint with a mid-sized annotated overlap (a few hundred pixels)."""
    return load_sample(min(records, key=lambda r: abs(r.overlap_px - 300)))


def test_a_moved_visit_is_moved_back_onto_its_annotation(overlapping: JointSample) -> None:
    later = replace(
        overlapping,
        image=shifted(overlapping.image, float(np.median(overlapping.image))),
        upper=shifted(overlapping.upper, False),
        lower=shifted(overlapping.lower, False),
    )
    moved, unmoved = Tally(), Tally()
    moved.add(moved_annotation(overlapping, later), later.masks)
    unmoved.add(overlapping.masks, later.masks)
    found, stayed = moved.summary(), unmoved.summary()
    assert found["n_overlapping"] == 1
    assert min(found["dice_upper"], found["dice_lower"]) > 0.99
    assert found["dice_overlap"] > 0.95
    # A shift of 3.6 px is far from nothing for the overlap.
    assert stayed["dice_overlap"] < found["dice_overlap"] - 0.1


def test_agreement_scores_every_answer_on_the_later_images(records: list) -> None:
    pair = (records[0], records[0])  # one image against itself: exact agreement
    answers = agreement([pair], segmenter=None)
    assert set(answers) == {MOVED, UNMOVED}
    for summary in answers.values():
        assert summary["dice_overlap"] == pytest.approx(1.0, abs=0.02)


def test_command_prints_a_table_per_answer_and_draws_the_pairs(
    mcp_joints_dir: Path, tmp_path: Path
) -> None:
    figure = tmp_path / "pairs.png"
    result = CliRunner().invoke(
        annotation_agreement.main,
        [
            *("--manifest", str(mcp_joints_dir / "manifest.json"), "--split", "val"),
            *("--limit", "6", "--figure", str(figure)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| annotation moved from the earlier visit |" in result.output
    assert "| segmenter " in result.output
    assert "against its own on the later one |" in result.output
    with Image.open(figure) as drawn:
        assert drawn.width == 3 * 256 and drawn.height % 256 == 0
