"""Variants of annotated hand radiographs that the localiser must also handle.

A variant is named by comma-separated parts: ``two-hands`` (a mirrored radiograph, a
right hand, and the next one side by side, as in a PA view of both hands), ``mirrored``
(the image flipped left-right: a left hand becomes a right hand),
``scale=S`` (the whole image resized by S, as another pixel size or a downsampled
export gives) and ``rotation=D`` (the whole image turned D degrees clockwise on screen,
on a canvas large enough to keep every corner, as a cassette read in another
orientation gives). ``as-is`` is none of them. The landmarks are moved with the image,
so every variant is measured against the same annotations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from blsgan_core.crops import apply_affine, similarity, warp
from trainer.frontend.localiser_samples import Scene, mirror, side_by_side

AS_IS = "as-is"
FLAGS = ("mirrored", "two-hands")
NAMED_VARIANTS = (AS_IS, *FLAGS)
# Resizing beyond these would make a 2000-px radiograph smaller than a thumbnail or
# larger than any detector delivers.
SCALE_RANGE = (0.1, 5.0)


@dataclass(frozen=True)
class Variant:
    """How to change an annotated radiograph before localising (see the module docstring)."""

    mirrored: bool = False
    two_hands: bool = False
    scale: float = 1.0
    rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        if not SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]:
            raise ValueError(f"scale must be within {SCALE_RANGE}, got {self.scale!r}")
        if not math.isfinite(self.rotation_deg):
            raise ValueError(f"rotation must be finite, got {self.rotation_deg!r}")

    @property
    def name(self) -> str:
        """Canonical name, parsed back by ``parse_variant``."""
        flags = (self.mirrored, self.two_hands)
        parts = [flag for flag, on in zip(FLAGS, flags, strict=True) if on]
        if self.scale != 1.0:
            parts.append(f"scale={self.scale:g}")
        if self.rotation_deg % 360.0:
            parts.append(f"rotation={self.rotation_deg:g}")
        return ",".join(parts) or AS_IS


def parse_variant(text: str) -> Variant:
    """``"two-hands,scale=0.5,rotation=90"`` -> ``Variant``; ``ValueError`` naming a bad part."""
    values: dict[str, float | bool] = {}
    for part in (p.strip() for p in text.split(",")):
        key, _, value = part.partition("=")
        if part == AS_IS:
            continue
        if part in FLAGS:
            values[part.replace("-", "_")] = True
        elif key in ("scale", "rotation") and value:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"{key} needs a number, got {value!r} in {text!r}") from None
            values["rotation_deg" if key == "rotation" else key] = number
        else:
            raise ValueError(
                f"unknown variant part {part!r} in {text!r}: use {AS_IS}, mirrored, "
                "two-hands, scale=S, rotation=DEGREES, joined by commas"
            )
    return Variant(**values)  # type: ignore[arg-type]


def resize_and_turn(scene: Scene, scale: float, rotation_deg: float) -> Scene:
    """The whole scene resized by ``scale`` and turned clockwise, on a canvas that holds it.

    The canvas is filled with the image's median grey (its background, like the plate's
    unexposed border); the landmarks follow the same affine.
    """
    if scale == 1.0 and rotation_deg % 360.0 == 0.0:
        return scene
    height, width = scene.image.shape
    angle = math.radians(rotation_deg)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    out_width = max(1, round(scale * (width * cos + height * sin)))
    out_height = max(1, round(scale * (width * sin + height * cos)))
    # Output -> input: bearing -rotation in the input points up in the output, i.e. the
    # content turns clockwise by the rotation.
    to_input = similarity(
        ((out_width - 1) / 2.0, (out_height - 1) / 2.0),
        ((width - 1) / 2.0, (height - 1) / 2.0),
        1.0 / scale,
        -rotation_deg,
    )
    image = warp(scene.image, to_input, (out_height, out_width), fill=float(np.median(scene.image)))
    to_output = np.linalg.inv(to_input)
    return Scene(image, tuple(apply_affine(to_output, points) for points in scene.hands))


def make_scene(first: Scene, partner: Scene, variant: Variant) -> Scene:
    """The variant of ``first`` (``partner``: the second radiograph of ``two-hands``)."""
    scene = side_by_side(mirror(first), partner) if variant.two_hands else first
    if variant.mirrored:
        scene = mirror(scene)
    return resize_and_turn(scene, variant.scale, variant.rotation_deg)
