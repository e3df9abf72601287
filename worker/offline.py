"""``blsnode process``: the worker's pipeline on one file, without broker or database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blsgan_core.model import MODEL_KIND
from dicom_node.settings import Settings
from worker.models import ModelCache, registry_for
from worker.pipeline import SourceLimits, run_pipeline


def process_file(
    settings: Settings,
    source: Path,
    out_dir: Path,
    *,
    model_path: Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline on ``source``, write its outputs to ``out_dir``, report as plain data.

    The models are those a worker would use (the registry's promoted ones) unless
    ``model_path`` names a BLS-GAN checkpoint. Raises ``PermanentError`` for what cannot
    be processed and ``ValueError`` for an unusable device.
    """
    overrides = {MODEL_KIND: model_path} if model_path is not None else None
    cache = ModelCache(
        registry_for(settings),
        device or settings.models.device,
        overrides,
    )
    # Loaded only once the source decoded: a file that is refused costs no model memory.
    result = run_pipeline(
        source, cache.models, settings.outputs, out_dir, SourceLimits.from_settings(settings)
    )
    return result.as_dict() | {"source": str(source), "models": cache.models().describe()}
