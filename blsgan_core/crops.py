"""Joint crops and their geometry: source radiograph <-> 256x256 crop, both ways.

A crop is a square of the source turned so that the finger axis points up, resized to
``size`` pixels. ``CropGeometry`` keeps the affine map from crop pixels to source
pixels, so that masks and layer images computed on a crop can be drawn back onto the
source grid (``uncrop``), which the DICOM Segmentation needs.

Conventions (used everywhere in the front end):

- Pixel coordinates are ``(x, y)``: x to the right (column), y down (row); integer
  values are pixel centres.
- A direction is a *bearing* in degrees: 0 = up (towards smaller y), positive clockwise
  as seen on screen, so 90 = right (+x); the range is (-180, 180].
- An affine is a 3x3 matrix ``M`` with ``[x_src, y_src, 1] = M @ [x_out, y_out, 1]``:
  it maps an *output* pixel to where it samples the *input*, the form warping needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

CROP_SIZE = 256
# Crop side as a multiple of the MCP2-MCP3 distance: the multiple at which crops of the
# hand radiographs resemble the published BLS-GAN joint crops (see docs/frontend.md).
HAND_SIZE_MULTIPLE = 1.2
# Crop side in millimetres when the pixel spacing is known and chosen as the scale:
# 1.2 x an adult MCP2-MCP3 distance of about 20 mm.
CROP_SIDE_MM = 24.0
# Reductions below this are sampled without low-pass: its sigma would be under 0.25 px,
# which changes no grey value that matters and would filter every near-1:1 joint crop.
MIN_ANTIALIAS_SCALE = 1.5


def bearing_vector(angle_deg: float) -> np.ndarray:
    """Unit vector ``(dx, dy)`` of a bearing (0 = up, clockwise positive)."""
    angle = math.radians(angle_deg)
    return np.array([math.sin(angle), -math.cos(angle)])


def bearing_deg(dx: float, dy: float) -> float:
    """Bearing of the vector ``(dx, dy)`` in image coordinates; inverse of ``bearing_vector``."""
    if dx == 0 and dy == 0:
        raise ValueError("the bearing of a zero-length vector is undefined")
    return math.degrees(math.atan2(dx, -dy))


def similarity(
    centre_out: ArrayLike, centre_in: ArrayLike, scale: float, angle_deg: float
) -> np.ndarray:
    """Affine output -> input: rotate by the bearing, scale, move ``centre_out`` onto ``centre_in``.

    ``scale`` is input pixels per output pixel. With ``angle_deg`` = a, the output's "up"
    samples the input along bearing a, so content pointing along a ends up pointing up.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    angle = math.radians(angle_deg)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = np.asarray(centre_in, dtype=float) - linear @ np.asarray(centre_out, float)
    return matrix


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``(..., 2)`` points ``(x, y)`` through a 3x3 affine."""
    points = np.asarray(points, dtype=float)
    if points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {points.shape}")
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def affine_scale(matrix: np.ndarray) -> float:
    """Input pixels per output pixel (geometric mean over both axes)."""
    return float(math.sqrt(abs(np.linalg.det(matrix[:2, :2]))))


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, int],
    *,
    order: int = 1,
    fill: float = 0.0,
    antialias: bool = True,
) -> np.ndarray:
    """Sample ``image`` (H, W) on an output grid of ``shape`` through ``matrix`` (output -> input).

    When the output is coarser than the input, the input is low-pass filtered first
    (Gaussian, ``antialias_sigma``: (scale - 1) / 2 input pixels) so that thin cortical
    lines do not alias into noise; masks should be warped with ``antialias=False``.
    """
    if image.ndim != 2:
        raise ValueError(f"warp expects a 2-D image, got shape {image.shape}")
    if matrix.shape != (3, 3):
        raise ValueError(f"matrix must be 3x3, got {matrix.shape}")
    source = np.asarray(image, dtype=np.float32)
    scale = affine_scale(matrix)
    if antialias and scale > MIN_ANTIALIAS_SCALE:
        source, matrix = _low_pass(source, matrix, shape, scale)
        if source.size == 0:
            return np.full(shape, fill, np.float32)
    # ndimage indexes (row, col) = (y, x): swap the axes of the (x, y) matrix.
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float)
    rowcol = swap @ matrix @ swap
    return ndimage.affine_transform(
        source,
        rowcol[:2, :2],
        offset=rowcol[:2, 2],
        output_shape=shape,
        order=order,
        mode="constant",
        cval=fill,
        prefilter=False,
    ).astype(np.float32)


def antialias_sigma(scale: float) -> float:
    """Gaussian sigma in input pixels before sampling every ``scale``-th input pixel.

    ``(scale - 1) / 2``: zero when nothing is shrunk, growing with the reduction, so a
    2x shrink blurs by half a pixel and a 10x overview by 4.5 pixels.
    """
    return max(scale - 1.0, 0.0) / 2.0


def block_factor(scale: float) -> int:
    """Side k >= 1 of the blocks averaged before a ``scale``-fold reduction (1: none).

    A k x k mean has the variance of a Gaussian of sigma sqrt((k^2 - 1) / 12), which stays
    below ``antialias_sigma`` for k <= scale / 2; so blocks may do the bulk of a strong
    reduction cheaply and the Gaussian adds the rest, and below a 4x reduction k is 1.
    """
    return max(1, math.floor(scale / 2.0))


def _low_pass(
    source: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window of ``source`` the output samples, blurred by ``antialias_sigma(scale)``.

    Only that window (plus the kernel's reach) is filtered, so a small crop of a large
    radiograph does not filter the whole radiograph; for strong reductions the window is
    first averaged in k x k blocks (``block_factor``) and the Gaussian supplies only the
    remaining blur, which keeps a whole-radiograph overview cheap.
    """
    sigma = antialias_sigma(scale)
    height, width = shape
    corners = apply_affine(
        matrix, np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]])
    )
    margin = math.ceil(4.0 * sigma) + 2  # gaussian_filter truncates at 4 sigma
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + margin
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, source.shape[1] - 1), min(y1, source.shape[0] - 1)
    if x0 > x1 or y0 > y1:
        return np.zeros((0, 0), np.float32), matrix
    window = source[y0 : y1 + 1, x0 : x1 + 1]
    shift = np.eye(3)
    shift[:2, 2] = (-x0, -y0)
    matrix = shift @ matrix
    block = block_factor(scale)
    if block > 1 and min(window.shape) >= block:
        window, matrix = _block_mean(window, matrix, block)
        # A k-pixel box has variance (k^2 - 1) / 12; the Gaussian adds the rest, in blocks.
        sigma = math.sqrt(max(sigma**2 - (block**2 - 1) / 12.0, 0.0)) / block
    if sigma > 0.0:
        window = ndimage.gaussian_filter(window, sigma=sigma)
    return window, matrix


def _block_mean(
    window: np.ndarray, matrix: np.ndarray, block: int
) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``block`` x ``block`` tiles of ``window`` and the affine onto them.

    Trailing rows and columns that fill no whole tile are dropped (at most block - 1
    pixels, beyond the margin the caller added).
    """
    rows, cols = (window.shape[0] // block) * block, (window.shape[1] // block) * block
    tiles = window[:rows, :cols].reshape(rows // block, block, cols // block, block)
    # Tile i covers source pixels [i k, (i + 1) k), centred at i k + (k - 1) / 2.
    to_window = np.diag([float(block), float(block), 1.0])
    to_window[:2, 2] = (block - 1) / 2.0
    return tiles.mean(axis=(1, 3)), np.linalg.inv(to_window) @ matrix


@dataclass(frozen=True)
class CropGeometry:
    """A square crop of the source: centre, side in source pixels, bearing that becomes "up".

    Attributes
    ----------
    centre_x, centre_y
        Source pixel at the crop's centre.
    side_px
        Source pixels spanned by the crop's width (and height).
    angle_deg
        Bearing in the source that points up in the crop (the finger axis).
    size
        Crop width and height in pixels.
    """

    centre_x: float
    centre_y: float
    side_px: float
    angle_deg: float = 0.0
    size: int = CROP_SIZE

    def __post_init__(self) -> None:
        if not self.side_px > 0 or not math.isfinite(self.side_px):
            raise ValueError(f"side_px must be positive and finite, got {self.side_px!r}")
        if not isinstance(self.size, int) or self.size < 2:
            raise ValueError(f"size must be an integer >= 2, got {self.size!r}")
        if not (math.isfinite(self.centre_x) and math.isfinite(self.centre_y)):
            raise ValueError(f"centre must be finite, got ({self.centre_x}, {self.centre_y})")

    @property
    def matrix(self) -> np.ndarray:
        """Affine crop pixel -> source pixel."""
        middle = (self.size - 1) / 2.0
        return similarity(
            (middle, middle),
            (self.centre_x, self.centre_y),
            self.side_px / self.size,
            self.angle_deg,
        )

    @property
    def inverse(self) -> np.ndarray:
        """Affine source pixel -> crop pixel."""
        return np.linalg.inv(self.matrix)

    @property
    def corners(self) -> np.ndarray:
        """Source ``(x, y)`` of the crop's outer corners (pixel edges), in order around it."""
        low, high = -0.5, self.size - 0.5
        return self.to_source(np.array([[low, low], [high, low], [high, high], [low, high]]))

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Crop ``(x, y)`` points -> source points."""
        return apply_affine(self.matrix, points)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source ``(x, y)`` points -> crop points."""
        return apply_affine(self.inverse, points)

    def as_dict(self) -> dict[str, float | int | list[list[float]]]:
        """JSON-ready form, with the crop -> source matrix for consumers outside Python."""
        return {
            "centre_x": self.centre_x,
            "centre_y": self.centre_y,
            "side_px": self.side_px,
            "angle_deg": self.angle_deg,
            "size": self.size,
            "matrix": self.matrix.tolist(),
        }


def crop(
    image: np.ndarray, geometry: CropGeometry, *, order: int = 1, fill: float = 0.0
) -> np.ndarray:
    """Cut the crop described by ``geometry`` out of a 2-D source image."""
    return warp(image, geometry.matrix, (geometry.size, geometry.size), order=order, fill=fill)


def _check_crop_shape(array: np.ndarray, geometry: CropGeometry) -> None:
    if array.shape != (geometry.size, geometry.size):
        raise ValueError(
            f"array of shape {array.shape} does not match a {geometry.size}x{geometry.size} crop"
        )


def _footprint(
    geometry: CropGeometry,
    source_shape: tuple[int, int],
    box: tuple[int, int, int, int] | None = None,
) -> tuple[slice, slice] | None:
    """Rows and columns of the source that a crop covers (clipped), or None if none.

    ``box`` (x0, y0, x1, y1, crop pixels, inclusive) narrows it to a part of the crop.
    """
    if len(source_shape) != 2 or min(source_shape) < 1:
        raise ValueError(f"source_shape must be (height, width), got {source_shape!r}")
    height, width = source_shape
    last = geometry.size - 1
    x_low, y_low, x_high, y_high = box if box is not None else (0, 0, last, last)
    points = [[x_low, y_low], [x_high, y_low], [x_low, y_high], [x_high, y_high]]
    corners = geometry.to_source(np.array(points, float))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
    if x0 > x1 or y0 > y1:
        return None
    return slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1)


def _uncrop_window(
    array: np.ndarray, geometry: CropGeometry, window: tuple[slice, slice], order: int, fill: float
) -> np.ndarray:
    """The crop-sized ``array`` sampled on the source pixels of ``window`` only."""
    rows, columns = window
    # Source window -> crop: the inverse affine, shifted to the window's origin.
    window_to_source = np.eye(3)
    window_to_source[:2, 2] = (columns.start, rows.start)
    return warp(
        array,
        geometry.inverse @ window_to_source,
        (rows.stop - rows.start, columns.stop - columns.start),
        order=order,
        fill=fill,
        antialias=False,
    )


def uncrop(
    array: np.ndarray,
    geometry: CropGeometry,
    source_shape: tuple[int, int],
    *,
    order: int = 1,
    fill: float = 0.0,
) -> np.ndarray:
    """Draw a crop-sized array back onto the source grid; ``fill`` outside the crop.

    Only the source pixels under the crop's footprint are computed, so un-cropping onto
    a large radiograph stays cheap.
    """
    _check_crop_shape(array, geometry)
    window = _footprint(geometry, source_shape)
    out = np.full(source_shape, fill, dtype=np.float32)
    if window is not None:
        out[window] = _uncrop_window(array, geometry, window, order, fill)
    return out


def uncrop_mask(
    mask: np.ndarray, geometry: CropGeometry, source_shape: tuple[int, int]
) -> np.ndarray:
    """Boolean mask (or probability map, cut at 0.5) of a crop, on the source grid.

    The same values as ``uncrop(mask) >= 0.5`` (but where a sample's value is 0.5 within
    rounding), without a float image of the whole radiograph: the worker draws two masks
    per joint onto grids of several megapixels. Only the source pixels under the crop
    pixels at or above 0.5, widened by one (a bilinear sample is a mean of its four
    neighbours, so it reaches 0.5 only next to one that does), are sampled.
    """
    array = np.asarray(mask, dtype=np.float32)
    _check_crop_shape(array, geometry)
    out = np.zeros(source_shape, dtype=np.bool_)
    inside = array >= 0.5
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        return out
    columns = np.flatnonzero(inside.any(axis=0))
    last = geometry.size - 1
    box = (
        max(int(columns[0]) - 1, 0),
        max(int(rows[0]) - 1, 0),
        min(int(columns[-1]) + 1, last),
        min(int(rows[-1]) + 1, last),
    )
    window = _footprint(geometry, source_shape, box)
    if window is not None:
        out[window] = _uncrop_window(array, geometry, window, 1, 0.0) >= 0.5
    return out


class JointLike(Protocol):
    """What a crop needs of a located joint (``blsgan_core.joints.Joint`` fits)."""

    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...
    @property
    def axis_deg(self) -> float: ...


def crop_side(
    mcp2_mcp3_px: float | None,
    *,
    pixel_spacing_mm: float | None = None,
    multiple: float = HAND_SIZE_MULTIPLE,
    side_mm: float | None = None,
) -> float:
    """Source pixels across a joint crop.

    By hand size (``multiple`` x the MCP2-MCP3 distance) unless ``side_mm`` is given
    together with a pixel spacing, in which case the crop has that physical size. Hand
    size is the default because it needs no calibration and follows the bone sizes of
    children and adults alike.
    """
    if side_mm is not None:
        if pixel_spacing_mm is None or not pixel_spacing_mm > 0:
            raise ValueError(
                f"side_mm={side_mm} needs a positive pixel spacing, got {pixel_spacing_mm!r}"
            )
        return side_mm / pixel_spacing_mm
    if mcp2_mcp3_px is None or not mcp2_mcp3_px > 0:
        raise ValueError(f"mcp2_mcp3_px must be positive, got {mcp2_mcp3_px!r}")
    if not multiple > 0:
        raise ValueError(f"multiple must be positive, got {multiple!r}")
    return multiple * mcp2_mcp3_px


def joint_geometries(
    joints: Sequence[JointLike], side_px: float, size: int = CROP_SIZE
) -> list[CropGeometry]:
    """One crop per joint, centred on it, finger axis up, all of the same side."""
    return [CropGeometry(j.x, j.y, side_px, j.axis_deg, size) for j in joints]


def crop_joints(
    image: np.ndarray, joints: Sequence[JointLike], side_px: float, size: int = CROP_SIZE
) -> tuple[np.ndarray, list[CropGeometry]]:
    """Crops ``(N, size, size)`` float32 of every joint, with their geometries."""
    geometries = joint_geometries(joints, side_px, size)
    if not geometries:
        return np.zeros((0, size, size), np.float32), []
    return np.stack([crop(image, g) for g in geometries]), geometries
