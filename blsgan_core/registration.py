"""Sub-pixel rigid registration of one bone, baseline -> follow-up, and its residual MSE.

This is the registration step of JSN quantification by partial image registration
(Wang et al. 2023; Ou et al. 2023): each bone of a joint is registered on its own from the
baseline to the follow-up radiograph, and the registration error tells how well the
bone's appearance could be matched. BLS-GAN's downstream claim is that registering the
separated layers leaves a smaller error than registering the raw image inside the same
bone outline, because the overlapping other bone no longer pollutes the match.

Choices, and why:

- Rigid (shift + rotation): follow-ups of one joint show the same bone at the same
  scale; a rigid motion is what the JSN papers estimate. Rotation is about the centroid
  of the moving bone so that shift and angle do not trade off.
- Start: phase correlation (``skimage.registration.phase_cross_correlation``, 1/10 px) of
  the two bone images, robust to large shifts; then trust-region least squares on the
  differences over the window (Gauss-Newton with finite differences), first with
  linear interpolation (cheap), then a few steps with cubic B-splines (smooth, exact
  to a few hundredths of a pixel on known motions). Powell's method on the MSE needed
  some 450 evaluations (2.7 s per bone) for a 3 % lower MSE.
- Images are bone images zero outside their outline (a separated layer ``L_i``, or the
  raw joint restricted to the bone's mask ``J * M_i`` without separation). The MSE is
  taken over the union of the follow-up outline and the moved baseline outline, so a
  misplaced outline costs as much as misplaced texture.
- Work on the bounding box of both outlines plus a margin: a 256 x 256 crop costs a few
  thousand pixels per evaluation instead of 65 536.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, optimize
from skimage.registration import phase_cross_correlation

MARGIN_PX = 8
# Least squares: relative step of the finite differences and stopping tolerances.
_DIFF_STEP = 1e-2
_XTOL = 1e-6
_FTOL = 1e-10
# Iterations (each also costs 3 evaluations for the Jacobian): linear, then cubic.
_COARSE_EVALUATIONS = 10
_FINE_EVALUATIONS = 3


@dataclass(frozen=True)
class RigidRegistration:
    """Where the baseline bone moved to, and how well it then matches.

    ``dx``, ``dy`` in pixels (x right, y down), ``angle_deg`` clockwise on screen, about
    ``centre`` (x, y) of the baseline bone; ``mse`` after registration, ``mse_identity``
    before any motion (the do-nothing baseline of the registration).
    """

    dx: float
    dy: float
    angle_deg: float
    centre: tuple[float, float]
    mse: float
    mse_identity: float

    def baseline_point(self, x: float, y: float) -> tuple[float, float]:
        """Where the follow-up point (x, y) lay on the baseline, for this bone."""
        angle = math.radians(self.angle_deg)
        cos, sin = math.cos(angle), math.sin(angle)
        px, py = x - self.centre[0] - self.dx, y - self.centre[1] - self.dy
        return (cos * px + sin * py + self.centre[0], -sin * px + cos * py + self.centre[1])


def _check(image: NDArray[np.floating], mask: NDArray[np.bool_], name: str) -> None:
    if image.ndim != 2 or image.shape != mask.shape:
        raise ValueError(f"{name} image {image.shape} and mask {mask.shape} must be 2-D alike")
    if not mask.any():
        raise ValueError(f"{name} bone mask is empty")


def _window(first: NDArray[np.bool_], second: NDArray[np.bool_]) -> tuple[slice, slice]:
    rows, cols = np.nonzero(first | second)
    height, width = first.shape
    return (
        slice(max(int(rows.min()) - MARGIN_PX, 0), min(int(rows.max()) + MARGIN_PX + 1, height)),
        slice(max(int(cols.min()) - MARGIN_PX, 0), min(int(cols.max()) + MARGIN_PX + 1, width)),
    )


def _inverse_map(
    params: NDArray[np.float64], centre: NDArray[np.float64], origin: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(row, col) matrix and offset for ndimage: output pixel -> baseline pixel.

    ``params`` are (dx, dy, angle in degrees) about ``centre`` (x, y); ``origin`` (x, y) is
    where the output grid starts on the full grid.
    """
    dx, dy, angle = float(params[0]), float(params[1]), math.radians(float(params[2]))
    cos, sin = math.cos(angle), math.sin(angle)
    # Output pixel p (full grid) samples the baseline at R^-1 (p - c - d) + c.
    inverse = np.array([[cos, sin], [-sin, cos]])  # (x, y) rotation by -angle
    offset = centre - inverse @ (centre + np.array([dx, dy]) - origin)
    # ndimage works in (row, col): swap the axes of the (x, y) map.
    return inverse[::-1, ::-1], offset[::-1]


class _Problem:
    """The moved baseline against the follow-up, as a function of (dx, dy, angle)."""

    def __init__(
        self,
        moving: NDArray[np.float32],
        moving_mask: NDArray[np.bool_],
        fixed: NDArray[np.float32],
        fixed_mask: NDArray[np.bool_],
        window: tuple[slice, slice],
        centre: tuple[float, float],
        region: NDArray[np.bool_],
    ) -> None:
        # Linear samples for the coarse fit; cubic B-spline coefficients (computed once)
        # for the fine fit and the reported MSE: linear interpolation has kinks at every
        # pixel that stall Gauss-Newton about 0.1 px short of the optimum.
        self.samples = {1: moving, 3: ndimage.spline_filter(moving, order=3)}
        self.moving_mask = moving_mask.astype(np.float32)
        rows, cols = window
        self.fixed = fixed[window]
        self.fixed_mask = fixed_mask[window]
        self.region = region[window]
        self.weight = self.region.astype(np.float32)
        self.origin = np.array([cols.start, rows.start], dtype=float)
        self.centre = np.asarray(centre, dtype=float)

    def _map(self, params: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(row, col) matrix and offset: window pixel -> baseline pixel."""
        return _inverse_map(params, self.centre, self.origin)

    def moved(self, params: NDArray[np.float64], order: int = 3) -> NDArray[np.float32]:
        """Baseline image moved by ``params``, on the window's grid."""
        matrix, offset = self._map(params)
        return ndimage.affine_transform(
            self.samples[order], matrix, offset, self.fixed.shape, order=order, prefilter=False
        )

    def residuals(self, params: NDArray[np.float64], order: int) -> NDArray[np.float32]:
        """Differences over the window's region (zero where neither bone lies)."""
        return ((self.moved(params, order) - self.fixed) * self.weight).ravel()

    def mse(self, params: NDArray[np.float64]) -> float:
        """Mean squared difference over both outlines after moving by ``params``."""
        matrix, offset = self._map(params)
        mask = ndimage.affine_transform(
            self.moving_mask, matrix, offset, self.fixed.shape, order=1, prefilter=False
        )
        region = ((mask >= 0.5) | self.fixed_mask) & self.region
        return float(np.mean((self.moved(params)[region] - self.fixed[region]) ** 2))

    def fit(self, start: NDArray[np.float64], order: int, evaluations: int) -> NDArray[np.float64]:
        """Least-squares parameters from ``start`` with ``order`` interpolation."""
        found = optimize.least_squares(
            self.residuals,
            start,
            args=(order,),
            method="trf",
            diff_step=_DIFF_STEP,
            xtol=_XTOL,
            ftol=_FTOL,
            max_nfev=evaluations,
        )
        return np.asarray(found.x, dtype=float)


def smooth_inside(
    image: NDArray[np.floating], mask: NDArray[np.bool_], sigma: float
) -> NDArray[np.float32]:
    """A bone image Gaussian-filtered (``sigma`` px) and kept inside its outline.

    Registering smoothed bone images finds better motions of the bone (judged on the raw
    radiograph; ``trainer.evaluation.jsn``, docs/measurements.md): the 8-bit crops' noise
    and texture mismatch less. Zero outside ``mask``, as ``register_bone`` expects.
    """
    inside = np.where(mask, image, 0.0).astype(np.float32)
    return np.where(mask, ndimage.gaussian_filter(inside, sigma), 0.0).astype(np.float32)


def register_bone(
    moving: NDArray[np.floating],
    moving_mask: NDArray[np.bool_],
    fixed: NDArray[np.floating],
    fixed_mask: NDArray[np.bool_],
    region: NDArray[np.bool_] | None = None,
) -> RigidRegistration:
    """Register the baseline bone image ``moving`` onto the follow-up ``fixed``.

    Both images are grey values (bright = bone) zero outside their bone's outline, given
    by the masks. ``region`` (follow-up grid, default everywhere) limits where
    differences count: a partial registration, e.g. away from the crop's border, where a
    bone cut off by the crop has an edge that stays put whatever the bone does. Raises
    ``ValueError`` for images and masks of different shapes or an empty mask.
    """
    moving = np.asarray(moving, dtype=np.float32)
    fixed = np.asarray(fixed, dtype=np.float32)
    moving_mask = np.asarray(moving_mask, dtype=bool)
    fixed_mask = np.asarray(fixed_mask, dtype=bool)
    _check(moving, moving_mask, "baseline")
    _check(fixed, fixed_mask, "follow-up")
    if moving.shape != fixed.shape:
        raise ValueError(f"baseline {moving.shape} and follow-up {fixed.shape} differ in size")
    moving = np.where(moving_mask, moving, 0.0).astype(np.float32)
    fixed = np.where(fixed_mask, fixed, 0.0).astype(np.float32)
    region = np.ones(fixed.shape, bool) if region is None else np.asarray(region, dtype=bool)
    if region.shape != fixed.shape or not (region & fixed_mask).any():
        raise ValueError(f"region {region.shape} must be the images' shape and meet the bone")
    rows, cols = np.nonzero(moving_mask)
    centre = (float(cols.mean()), float(rows.mean()))
    shift_rc, _, _ = phase_cross_correlation(fixed * region, moving * region, upsample_factor=10)
    start = np.array([shift_rc[1], shift_rc[0], 0.0])
    window = _window(fixed_mask, moving_mask | ndimage.shift(moving_mask, shift_rc, order=0))
    problem = _Problem(moving, moving_mask, fixed, fixed_mask, window, centre, region)
    identity = problem.mse(np.zeros(3))
    # Phase correlation can lock onto the wrong peak; keep the better of it and no motion.
    if identity < problem.mse(start):
        start = np.zeros(3)
    coarse = problem.fit(start, order=1, evaluations=_COARSE_EVALUATIONS)
    params = problem.fit(coarse, order=3, evaluations=_FINE_EVALUATIONS)
    return RigidRegistration(
        dx=float(params[0]),
        dy=float(params[1]),
        angle_deg=float(params[2]),
        centre=centre,
        mse=problem.mse(params),
        mse_identity=identity,
    )


def apply_motion(
    image: NDArray[np.floating], registration: RigidRegistration, *, order: int = 3
) -> NDArray[np.float32]:
    """The baseline ``image`` (any image of the baseline's grid) moved by ``registration``.

    The result lies on the follow-up's grid, zero where the moved image does not reach.
    Use it to judge a motion on images other than the ones it was estimated from (e.g.
    the raw radiograph, whatever layers the registration saw). ``order`` 0 moves masks.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    params = np.array([registration.dx, registration.dy, registration.angle_deg])
    matrix, offset = _inverse_map(params, np.asarray(registration.centre, dtype=float), np.zeros(2))
    return ndimage.affine_transform(image, matrix, offset, image.shape, order=order)
