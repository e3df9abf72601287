"""Separate one joint crop given as files: read, run BLS-GAN, write PNGs, measure.

The plain function behind ``blsnode separate``; the pipeline's Celery task works on
arrays in memory instead and calls :func:`blsgan_core.inference.separate` directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from blsgan_core.data import read_grey, read_mask
from blsgan_core.harmonise import harmonise
from blsgan_core.inference import separate
from blsgan_core.metrics import image_metrics
from blsgan_core.model import load_model


@dataclass(frozen=True)
class JointSeparation:
    """What one separation produced: files written, k and reconstruction fidelity."""

    model: Path
    version: str
    k: float
    mse: float
    ssim: float
    psnr: float
    upper_layer: Path
    lower_layer: Path
    reconstruction: Path

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON output; an infinite PSNR (exact reconstruction) becomes None,
        since JSON has no infinity."""
        data: dict[str, object] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, float) and not math.isfinite(value):
                value = None
            data[name] = value
        return data


def _write_png(path: Path, image: NDArray[np.floating]) -> None:
    grey = np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(path)


def write_separation_pngs(
    out_dir: Path, stem: str, layers: NDArray[np.floating], reconstruction: NDArray[np.floating]
) -> dict[str, Path]:
    """Write ``<stem>_upper.png``, ``<stem>_lower.png``, ``<stem>_reconstruction.png``.

    ``layers`` is ``(2, H, W)`` (upper first), ``reconstruction`` ``(H, W)``, both in
    [0, 1]; the files are 8-bit grey. Returns the paths under the keys ``upper_layer``,
    ``lower_layer`` and ``reconstruction``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "upper_layer": out_dir / f"{stem}_upper.png",
        "lower_layer": out_dir / f"{stem}_lower.png",
        "reconstruction": out_dir / f"{stem}_reconstruction.png",
    }
    _write_png(outputs["upper_layer"], layers[0])
    _write_png(outputs["lower_layer"], layers[1])
    _write_png(outputs["reconstruction"], reconstruction)
    return outputs


def separate_joint_files(
    image_path: Path,
    upper_path: Path,
    lower_path: Path,
    out_dir: Path,
    model_path: Path,
    *,
    device: str = "cpu",
) -> JointSeparation:
    """Separate the joint in ``image_path`` with its two bone masks; ``ValueError`` if unusable.

    Writes ``<stem>_upper.png``, ``<stem>_lower.png`` and ``<stem>_reconstruction.png``
    (8-bit grey) into ``out_dir``. The image is harmonised onto the training data's grey
    statistics first, as the pipeline does; the metrics compare the Eq. 1
    reconstruction with that image inside the bones (the union of the masks).
    """
    image = harmonise(read_grey(image_path))
    upper, lower = read_mask(upper_path), read_mask(lower_path)
    if not image.shape == upper.shape == lower.shape:
        raise ValueError(
            f"image {image.shape} and masks {upper.shape}, {lower.shape} differ in size"
        )
    for path, mask in ((upper_path, upper), (lower_path, lower)):
        if not mask.any():
            raise ValueError(f"mask {path} is empty")
    model = load_model(model_path, device=device)
    result = separate(image[None], np.stack([upper, lower])[None], model)
    layers = result.layers[0].numpy()
    reconstruction = result.reconstruction[0, 0].numpy()
    outputs = write_separation_pngs(out_dir, image_path.stem, layers, reconstruction)
    metrics = image_metrics(reconstruction, image, upper | lower)
    return JointSeparation(
        model=model_path,
        version=model.version,
        k=float(result.k[0]),
        mse=metrics["mse"],
        ssim=metrics["ssim"],
        psnr=metrics["psnr"],
        **outputs,
    )
