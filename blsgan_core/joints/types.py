"""What the localiser returns: hands with five MCP joints each, and its refusal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from blsgan_core.joints.anatomy import JOINT_NAMES, Side


class NoHandFoundError(ValueError):
    """The image shows no hand the localiser can find (blank, noise, another body part)."""


@dataclass(frozen=True)
class Joint:
    """One MCP joint centre in source pixels, its finger axis bearing and a confidence.

    ``axis_deg`` is the bearing of the finger axis from the joint towards the finger
    tip: 0 = up (towards smaller y), positive clockwise on screen, 90 = right.
    """

    name: str
    x: float
    y: float
    axis_deg: float
    score: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (rounded to what is meaningful)."""
        return {
            "name": self.name,
            "x": round(self.x, 2),
            "y": round(self.y, 2),
            "axis_deg": round(self.axis_deg, 2),
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Hand:
    """One hand: side of a PA view, the five MCP joints thumb to little, a confidence."""

    side: Side
    joints: tuple[Joint, ...]
    score: float

    def __post_init__(self) -> None:
        names = tuple(j.name for j in self.joints)
        if names != JOINT_NAMES:
            raise ValueError(f"a hand needs joints {JOINT_NAMES}, got {names}")
        if self.side not in ("L", "R"):
            raise ValueError(f"side must be 'L' or 'R', got {self.side!r}")

    @property
    def mcp2_mcp3_px(self) -> float:
        """Distance between the index and middle joint centres: the hand's size."""
        return math.dist((self.joints[1].x, self.joints[1].y), (self.joints[2].x, self.joints[2].y))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "side": self.side,
            "score": round(self.score, 4),
            "joints": [j.as_dict() for j in self.joints],
        }
