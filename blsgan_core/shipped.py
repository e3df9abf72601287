"""Where the weights shipped inside the package live (``blsgan_core/weights/*.pt``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_weights(filename: str) -> Path:
    """Path of a weights file shipped with the package; ``ValueError`` if it is missing.

    Resolved through ``importlib.resources`` so that it works from a wheel install as
    well as from a checkout.
    """
    if "/" in filename or "\\" in filename or not filename.endswith(".pt"):
        raise ValueError(f"not a shipped weights file name: {filename!r}")
    path = Path(str(resources.files("blsgan_core").joinpath("weights", filename)))
    if not path.is_file():
        raise ValueError(f"the package ships no weights {filename!r} (looked at {path})")
    return path
