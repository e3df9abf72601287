"""Render the one-page overview of a radiograph's results as an 8-bit greyscale image.

One row per joint (right hand first, thumb first), four tiles per row: the joint crop J,
the upper layer L1, the lower layer L2 and the reconstruction R, side by side at their
native size; a label column gives joint, hand, overlap area, joint space width (min, mean) and
overlap depth, k and reconstruction error,
and a title names the model. Everything is drawn with PIL's built-in font, so the labels
are burned into the pixels. Only results and model identity reach this module, never
patient data, so the burned-in text cannot identify the patient.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dicom_node.derived.model import JointResult, LengthUnit, RadiographResult, Side, SpacingSource

TILE_GAP = 8
LABEL_WIDTH = 260
TITLE_HEIGHT = 64
HEADER_HEIGHT = 30
COLUMNS = ("joint crop J", "upper layer L1", "lower layer L2", "reconstruction R")
_FOREGROUND = 255
_MUTED = 170
_BACKGROUND = 0
_SIDES = {Side.LEFT: "left", Side.RIGHT: "right"}


def overlap_text(joint: JointResult, spacing_mm: tuple[float, float] | None) -> str:
    """The overlap area as text: mm2 with spacing, pixels without (ASCII: any charset)."""
    if spacing_mm is None:
        return f"overlap {joint.overlap_area_px} px"
    return f"overlap {joint.overlap_area_mm2(spacing_mm):.1f} mm2"


def space_text(joint: JointResult) -> tuple[str, str]:
    """Joint space width (min / mean) and overlap depth as two lines (ASCII).

    Negative widths are overlaps; "px" without spacing, "mm*" at the detector scale
    (Imager Pixel Spacing, magnification not corrected), "mm" with Pixel Spacing.
    """
    space = joint.space
    if space is None:
        return "JSW not measurable", ""
    unit = "px" if space.unit is LengthUnit.PIXELS else "mm"
    if space.spacing is SpacingSource.IMAGER_PIXEL_SPACING:
        unit += "*"
    return (
        f"JSW min {space.min_width:.2f} mean {space.mean_width:.2f} {unit}",
        f"overlap depth {space.overlap_depth:.2f} {unit}",
    )


def render_overview(result: RadiographResult, spacing_mm: tuple[float, float] | None) -> np.ndarray:
    """The overview as uint8 (rows, columns), white text and tiles on black."""
    joints = list(result.joints())
    tile_rows, tile_columns = joints[0][1].crop.shape
    width = LABEL_WIDTH + len(COLUMNS) * (tile_columns + TILE_GAP)
    height = TITLE_HEIGHT + HEADER_HEIGHT + len(joints) * (tile_rows + TILE_GAP)
    canvas = Image.new("L", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title_font = ImageFont.load_default(size=22)
    font = ImageFont.load_default(size=17)
    small = ImageFont.load_default(size=15)

    draw.text(
        (TILE_GAP, 8),
        f"BLS-GAN bone layer separation, {result.model.name} {result.model.version}",
        fill=_FOREGROUND,
        font=title_font,
    )
    note = "Derived images for review; not the original radiograph"
    if any(j.space and j.space.spacing is SpacingSource.IMAGER_PIXEL_SPACING for _, j in joints):
        note += "; mm* = at the detector, magnification not corrected"
    draw.text((TILE_GAP, 36), note, fill=_MUTED, font=small)
    for index, name in enumerate(COLUMNS):
        x = LABEL_WIDTH + index * (tile_columns + TILE_GAP)
        draw.text((x, TITLE_HEIGHT + 4), name, fill=_FOREGROUND, font=font)

    for row, (side, joint) in enumerate(joints):
        top = TITLE_HEIGHT + HEADER_HEIGHT + row * (tile_rows + TILE_GAP)
        for index, tile in enumerate(
            (joint.crop, joint.upper_layer, joint.lower_layer, joint.reconstruction)
        ):
            x = LABEL_WIDTH + index * (tile_columns + TILE_GAP)
            canvas.paste(Image.fromarray(to_uint8(tile)), (x, top))
        lines = [
            (f"{joint.joint} {side}", font, _FOREGROUND),
            (f"{joint.joint.finger}, {_SIDES[side]} hand", small, _MUTED),
            (overlap_text(joint, spacing_mm), small, _FOREGROUND),
            *((text, small, _FOREGROUND) for text in space_text(joint) if text),
            (f"k {joint.k:.3f}", small, _FOREGROUND),
            (f"PSNR {joint.error.psnr:.1f} dB", small, _FOREGROUND),
            (f"SSIM {joint.error.ssim:.4f}", small, _FOREGROUND),
            (f"MSE {joint.error.mse:.2e}", small, _FOREGROUND),
        ]
        y = top + 4
        for text, line_font, fill in lines:
            draw.text((TILE_GAP, y), text, fill=fill, font=line_font)
            y += 22
    return np.asarray(canvas, dtype=np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A [0, 1] float image as 8-bit grey values (rounded)."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
