"""Shapes of the masks in DICOM pixel coordinates: outlines for the GSPS, regions for the SR.

DICOM's 2-D image coordinates (GSPS ``PIXEL`` units, SR ``SCOORD``) put (0, 0) at the
top-left corner of the top-left pixel, so a pixel centre is at index + 0.5; points are
(column, row). Everything is traced on the bounding box of a mask only: a joint is a
small part of a radiograph of several megapixels.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull
from skimage.measure import find_contours

# Contours shorter than this many points are specks of a mask, not outlines.
MIN_CONTOUR_POINTS = 8
# At most this many points per outline: keeps the object small; a joint outline spans a
# few hundred source pixels, so a point every few pixels follows it closely.
MAX_CONTOUR_POINTS = 200


# Rows and columns of a box on a mask's grid, e.g. ``JointResult.window``.
Window = tuple[slice, slice]
_WHOLE: Window = (slice(0, None), slice(0, None))


def bounding_box(mask: np.ndarray, window: Window = _WHOLE) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of a mask, bounds inclusive; ``None`` if empty.

    ``window``: a box known to hold every pixel of the mask, the only part searched.
    Two boolean reductions: far cheaper than ``np.nonzero`` on a radiograph-sized mask.
    """
    part = mask[window]
    rows, columns = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    if rows.size == 0:
        return None
    top, left = window[0].start, window[1].start
    return top + int(rows[0]), top + int(rows[-1]), left + int(columns[0]), left + int(columns[-1])


def mask_outlines(mask: np.ndarray, window: Window = _WHOLE) -> list[np.ndarray]:
    """Closed outlines of a mask as (column, row) float32 points in DICOM pixel coordinates.

    Traced at 0.5 on the mask's bounding box (looked for in ``window``, as in
    ``bounding_box``), padded so that outlines touching the border close too; the last
    point repeats the first.
    """
    found = bounding_box(mask, window)
    if found is None:
        return []
    top, bottom, left, right = found
    box = mask[top : bottom + 1, left : right + 1]
    outlines = []
    for contour in find_contours(np.pad(box.astype(np.float32), 1), 0.5):
        if len(contour) < MIN_CONTOUR_POINTS:
            continue
        step = max(1, int(np.ceil(len(contour) / MAX_CONTOUR_POINTS)))
        points = contour[::step]
        points = np.vstack([points, points[:1]])
        # Undo the padding, move to the full grid, and to DICOM's pixel-centre convention.
        y = np.clip(points[:, 0] - 1 + top + 0.5, 0, mask.shape[0])
        x = np.clip(points[:, 1] - 1 + left + 0.5, 0, mask.shape[1])
        outlines.append(np.column_stack([x, y]).astype(np.float32))
    return outlines


def convex_region(*masks: np.ndarray, window: Window = _WHOLE) -> np.ndarray | None:
    """The closed convex polygon around the pixel centres of all ``masks`` (same shape).

    (column, row) float32 points in DICOM pixel coordinates, in order around the polygon,
    last point = first. ``None`` when the masks are empty or
    their pixels lie on one line (no area to enclose). Only the first and last pixel of
    each row can be hull vertices, so at most two points per row go to Qhull.
    ``window``: a box known to hold every pixel of the masks, the only part searched.
    """
    union = np.logical_or.reduce([mask[window] for mask in masks])
    found = bounding_box(union)
    if found is None:
        return None
    top, bottom, left, right = found
    box = union[top : bottom + 1, left : right + 1]
    top, left = top + window[0].start, left + window[1].start
    rows = np.flatnonzero(box.any(axis=1))
    first = box[rows].argmax(axis=1)
    last = box.shape[1] - 1 - box[rows, ::-1].argmax(axis=1)
    points = np.column_stack(
        [np.concatenate([first, last]) + left, np.concatenate([rows, rows]) + top]
    ).astype(np.float64)
    points = np.unique(points, axis=0)
    if len(points) < 3 or np.linalg.matrix_rank(points - points[0]) < 2:
        return None
    corners = points[ConvexHull(points).vertices] + 0.5
    return np.vstack([corners, corners[:1]]).astype(np.float32)
