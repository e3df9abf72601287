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


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of a mask, bounds inclusive; ``None`` if empty.

    Two boolean reductions: far cheaper than ``np.nonzero`` on a radiograph-sized mask.
    """
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]), int(columns[0]), int(columns[-1])


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines of a mask as (column, row) float32 points in DICOM pixel coordinates.

    Traced at 0.5 on the mask's bounding box, padded so that outlines touching the border
    close too; the last point repeats the first.
    """
    found = bounding_box(mask)
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


def convex_region(*masks: np.ndarray) -> np.ndarray | None:
    """The closed convex polygon around the pixel centres of all ``masks`` (same shape).

    (column, row) float32 points in DICOM pixel coordinates, in order around the polygon,
    last point = first. ``None`` when the masks are empty or
    their pixels lie on one line (no area to enclose). Only the first and last pixel of
    each row can be hull vertices, so at most two points per row go to Qhull.
    """
    union = np.logical_or.reduce(masks)
    found = bounding_box(union)
    if found is None:
        return None
    top, bottom, left, right = found
    box = union[top : bottom + 1, left : right + 1]
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
