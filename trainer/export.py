"""Export a trained model for shipping: fp16 weights, model cards, promoted by default.

Every kind ships through :func:`fp16_copy` and gets its card from
:mod:`trainer.model_card`; BLS-GAN models go through the registry (:func:`export_half`),
the front-end networks to a named file (:func:`trainer.frontend.run.export`).

The package's shipped weights (``blsgan_core/weights/``) are a read-only registry the
node falls back to when its own registry has nothing promoted. Shipping in fp16 halves
the file (a ``cpu``-preset model with its supervisor is ~9 MB); ``load_state_dict``
casts the weights back to fp32 on load, and the layers differ by ~1e-3 at most.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import Checkpoint, load_checkpoint
from blsgan_core.model import MODEL_KIND, BLSGANConfig
from blsgan_core.registry import SHIPPED_WEIGHTS_DIR, ModelEntry, ModelRegistry
from trainer.model_card import card_markdown


def fp16_copy(checkpoint: Checkpoint, source: Path, **metadata: Any) -> Checkpoint:
    """``checkpoint`` with its float tensors in fp16, saying where it came from.

    Every kind ships this way; ``metadata`` (the export command, an evaluation, a
    summary for the card) is added to the checkpoint's own.
    """
    return replace(
        checkpoint,
        state={
            network: {
                key: value.half() if value.is_floating_point() else value
                for key, value in tensors.items()
            }
            for network, tensors in checkpoint.state.items()
        },
        metadata={
            **checkpoint.metadata,
            "exported_from": str(source),
            "precision": "fp16",
            **metadata,
        },
    )


def export_half(
    checkpoint: Path,
    name: str,
    directory: Path = SHIPPED_WEIGHTS_DIR,
    *,
    promote: bool = True,
    evaluation: dict[str, Any] | None = None,
    boundary_blend: str | None = None,
    reconstructor_window: int | None = None,
    offset_bias: float | None = None,
    command: str | None = None,
    note: str | None = None,
) -> ModelEntry:
    """Write ``checkpoint`` as fp16 ``<directory>/<name>.pt`` with its cards; promote it.

    ``evaluation`` (a separation report of ``blsnode evaluate``) goes into the card, so
    the shipped model says how it measured against the baselines; its realism figure
    (held-out real and generated patches) is copied next to the card as
    ``<name>-realism.png``, which the card shows. ``boundary_blend`` (if not ``None``)
    sets the config's seam step (:data:`blsgan_core.seam_modes.BLEND_MODES`), so any
    checkpoint can ship with or without one without retraining; ``reconstructor_window``
    (if not ``None``) likewise sets where k is read
    (:attr:`blsgan_core.model.BLSGANConfig.reconstructor_window`), for checkpoints trained
    before the trainer recorded it; ``offset_bias`` (if not ``None``) calibrates
    ``eq1-offset`` (:mod:`trainer.evaluation.offset_calibration`). ``command`` is the export
    command line and ``note`` a provenance note (why this epoch, this seam step), both for
    the card.
    """
    source = load_checkpoint(checkpoint, expected_kind=MODEL_KIND)
    evaluation, figure = _card_figure(evaluation, name)
    changes = {
        "boundary_blend": boundary_blend,
        "reconstructor_window": reconstructor_window,
        "offset_bias": offset_bias,
    }
    changed = {key: value for key, value in changes.items() if value is not None}
    if changed:
        config = BLSGANConfig.from_dict({**source.config, **changed}).to_dict()
        source = replace(source, config=config, version=_step_version(source, config))
    extra: dict[str, Any] = {"evaluation": evaluation} if evaluation is not None else {}
    if note:
        extra["note"] = note
    half = fp16_copy(source, checkpoint, export_command=command, **extra)
    registry = ModelRegistry(directory, shipped_dir=None)
    entry = registry.register(half, name)
    if figure is not None:
        shutil.copyfile(figure, directory / f"{name}-realism.png")
    entry.path.with_suffix(".md").write_text(card_markdown(entry.card), encoding="utf-8")
    if promote:
        entry = registry.promote(name)
    return entry


def _step_version(source: Checkpoint, config: dict[str, Any]) -> str:
    """The version of ``source`` exported with ``config``: ``+<step>`` appended when the
    seam step differs from the checkpoint's, and the step's calibration (``+0.0153``) when
    that differs, so that results made with and without them (whose model version the
    DICOM outputs record) are told apart."""
    trained = BLSGANConfig.from_dict(source.config)
    exported = BLSGANConfig.from_dict(config)
    version = source.version
    if exported.boundary_blend != trained.boundary_blend:
        version += f"+{exported.boundary_blend}"
    if exported.offset_bias != trained.offset_bias:
        version += f"{exported.offset_bias:+.4f}"
    return version


def _card_figure(
    evaluation: dict[str, Any] | None, name: str
) -> tuple[dict[str, Any] | None, Path | None]:
    """The evaluation with its realism figure renamed ``<name>-realism.png``, and the source.

    The card links the figure by that name; export copies it next to the card.
    """
    realism = (evaluation or {}).get("realism") or {}
    if evaluation is None or not realism.get("figure"):
        return evaluation, None
    source = Path(realism["figure"])
    if not source.is_file():
        raise ValueError(f"the evaluation's realism figure {source} does not exist")
    renamed = {**realism, "figure": f"{name}-realism.png"}
    return {**evaluation, "realism": renamed}, source
