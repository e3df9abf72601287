"""MCP joint localisation: hands, sides, joint centres and finger axes in a radiograph."""

from blsgan_core.joints.locate import locate
from blsgan_core.joints.model import Localiser, LocaliserConfig, load_localiser
from blsgan_core.joints.types import Hand, Joint, NoHandFoundError

__all__ = [
    "Hand",
    "Joint",
    "Localiser",
    "LocaliserConfig",
    "NoHandFoundError",
    "load_localiser",
    "locate",
]
