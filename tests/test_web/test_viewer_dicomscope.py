"""Seen in a real viewer: OFFIS DICOMscope applies the node's Grayscale Softcopy
Presentation State to the radiograph it references and draws each joint's bone outlines
and label over it.

DICOMscope is the GSPS reference viewer built on dcmtk's ``dcmpstat``; OHIF (the other
viewer in these tests) does not render presentation states. The screen is read before
and after the presentation state is opened: what changed must lie on the outlines the
GSPS holds, mapped to the screen through where the viewer put the image.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_factory import make_dx, write_dataset
from dicomscope_viewer import DicomScope, running_dicomscope
from loopback import wait_until
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage
from skimage import draw
from worker_testing import ATLAS_ID, SCALE, promote_blsgan

from dicom_node.derived.write import OutputKind
from dicom_node.settings import OutputSettings
from worker.models import ModelCache
from worker.pipeline import run_pipeline

# Screen pixels around an outline's vertex that must hold a drawn pixel.
NEAR_PX = 1
# Where a label is written, in screen pixels right of and below its anchor point (min
# right, max right, min down, max down): a line of text, beside or above the anchor.
LABEL_BOX = (-60, 320, -90, 40)
# The largest shift (screen pixels) between the outlines as drawn and as DICOM places them.
SHIFT_PX = 3
# A screen pixel counts as changed when a channel moved by more than this.
CHANGED = 10


def _graphics(
    presentation_state: Path,
) -> tuple[list[NDArray[np.float64]], list[tuple[float, float]]]:
    """The GSPS's polylines as (column, row) points and its labels' anchor points, in
    image pixels."""
    dataset = pydicom.dcmread(presentation_state)
    lines, anchors = [], []
    for annotation in dataset.GraphicAnnotationSequence:
        for graphic in getattr(annotation, "GraphicObjectSequence", []):
            assert graphic.GraphicAnnotationUnits == "PIXEL"
            lines.append(np.asarray(graphic.GraphicData, dtype=float).reshape(-1, 2))
        for label in getattr(annotation, "TextObjectSequence", []):
            assert label.AnchorPointAnnotationUnits == "PIXEL"
            anchors.append((float(label.AnchorPoint[0]), float(label.AnchorPoint[1])))
    return lines, anchors


def _changed(before: NDArray[np.uint8], after: NDArray[np.uint8]) -> NDArray[np.bool_]:
    return np.abs(after.astype(int) - before.astype(int)).max(axis=2) > CHANGED


def _image_box(empty: NDArray[np.uint8], shown: NDArray[np.uint8]) -> tuple[slice, slice]:
    """Where the viewer drew the radiograph: the largest region that changed when it opened.

    An opening first cuts the thin lines (tabs, toolbar, borders) that also changed.
    """
    labels, _ = ndimage.label(ndimage.binary_opening(_changed(empty, shown), iterations=3))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    rows, columns = ndimage.find_objects(labels)[int(np.argmax(sizes)) - 1]
    return rows, columns


def _screen_once(
    viewer: DicomScope, condition: Callable[[NDArray[np.uint8]], bool], what: str
) -> NDArray[np.uint8]:
    """The screen once ``condition`` holds for it and it no longer changes."""
    last: list[NDArray[np.uint8]] = []

    def settled() -> list[NDArray[np.uint8]] | None:
        screen = viewer.screen()
        steady = bool(last) and np.array_equal(last[0], screen)
        last[:] = [screen]
        return [screen] if steady and condition(screen) else None

    return wait_until(settled, 60.0, what, interval_s=0.5)[0]


@pytest.mark.e2e
def test_dicomscope_draws_the_gsps_outlines_on_the_radiograph(
    tmp_path: Path, hand_radiographs_dir: Path, record: list[Path]
) -> None:
    dataset = make_dx(hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg", scale=SCALE)
    source = write_dataset(dataset, tmp_path / "hand.dcm")
    models = ModelCache(promote_blsgan(tmp_path / "registry"), "cpu").models()
    result = run_pipeline(source, models, OutputSettings(), tmp_path / "out")
    gsps = next(o for o in result.outputs if o.kind is OutputKind.PRESENTATION_STATE).path
    lines, anchors = _graphics(gsps)
    assert len(lines) >= 10 and len(anchors) == 5  # two bones and a label per joint

    with running_dicomscope(tmp_path / "dicomscope") as viewer:
        viewer.show_viewer()
        empty = _screen_once(viewer, lambda s: True, "DICOMscope's empty viewer")
        viewer.open_image(source)
        shown = _screen_once(
            viewer, lambda s: _changed(empty, s).mean() > 0.1, "the radiograph on the screen"
        )
        viewer.open_presentation_state(gsps)
        drawn = _screen_once(
            viewer, lambda s: _changed(shown, s).sum() > 500, "the presentation state's graphics"
        )
    shot = tmp_path / "dicomscope-radiograph-with-gsps.png"
    Image.fromarray(drawn).save(shot)
    record.append(shot)

    rows, columns = _image_box(empty, shown)
    # The whole radiograph is on screen, scaled alike in both directions.
    scale_x = (columns.stop - columns.start) / dataset.Columns
    scale_y = (rows.stop - rows.start) / dataset.Rows
    assert scale_x == pytest.approx(scale_y, rel=0.02)
    # What the presentation state changed over the radiograph (the side panel also
    # changes: it names the GSPS's graphic layers).
    overlay = np.zeros_like(empty[..., 0], dtype=bool)
    overlay[rows, columns] = _changed(shown, drawn)[rows, columns]
    # The outlines in screen pixels; DICOMscope draws them a pixel or two up and left of
    # where DICOM's corner convention puts them (as measured here), so the check allows
    # a shift of up to SHIFT_PX in each direction, the same for every outline.
    screen_lines = [
        np.column_stack([columns.start + line[:, 0] * scale_x, rows.start + line[:, 1] * scale_y])
        for line in lines
    ]
    near_overlay = ndimage.binary_dilation(overlay, iterations=NEAR_PX)

    def drawn_fractions(dx: int, dy: int) -> list[float]:
        return [
            float(
                near_overlay[
                    np.round(p[:, 1] + dy).astype(int), np.round(p[:, 0] + dx).astype(int)
                ].mean()
            )
            for p in screen_lines
        ]

    shifts = [
        (dx, dy) for dx in range(-SHIFT_PX, SHIFT_PX + 1) for dy in range(-SHIFT_PX, SHIFT_PX + 1)
    ]
    best = max(shifts, key=lambda shift: np.mean(drawn_fractions(*shift)))
    # Every outline is drawn where the GSPS puts it, along its whole length.
    assert min(drawn_fractions(*best)) >= 0.95, (best, drawn_fractions(*best))
    # And the outlines account for most of what changed (the rest: the joints' labels).
    on_lines = np.zeros_like(overlay)
    for points in screen_lines:
        vertices = np.round(points + best).astype(int)
        for (x0, y0), (x1, y1) in itertools.pairwise(vertices):
            on_lines[draw.line(y0, x0, y1, x1)] = True
    text = overlay & ~ndimage.binary_dilation(on_lines, iterations=NEAR_PX + 2)
    # The rest is the joints' labels: DICOM lets a viewer write a label anywhere in the
    # vicinity of its anchor point (no bounding box is given), DICOMscope above it.
    screen_rows, screen_columns = np.indices(text.shape)
    near_labels = np.zeros_like(text)
    for column, row in anchors:
        x = columns.start + column * scale_x + best[0]
        y = rows.start + row * scale_y + best[1]
        right, down = screen_columns - x, screen_rows - y
        near_anchor = (
            (right >= LABEL_BOX[0])
            & (right <= LABEL_BOX[1])
            & (down >= LABEL_BOX[2])
            & (down <= LABEL_BOX[3])
        )
        assert (text & near_anchor).sum() >= 30, (column, row)
        near_labels |= near_anchor
    assert (text & ~near_labels).sum() <= 0.02 * overlay.sum(), "graphics where the GSPS has none"
