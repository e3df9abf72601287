"""The trainer's side of the model registry: register a finished run with its model card.

The registry itself (layout, promotions, shipped fallback) is
:class:`blsgan_core.registry.ModelRegistry`; this module adds what only the trainer
knows: the human-readable card of a training run (:mod:`trainer.model_card`) and the
registry's summary of an entry for ``blsnode models``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blsgan_core.registry import ModelEntry, ModelRegistry
from trainer.model_card import card_markdown


def register_checkpoint(registry: ModelRegistry, checkpoint: Path, name: str) -> ModelEntry:
    """Copy ``checkpoint`` into the registry as ``name`` with its JSON and Markdown cards."""
    entry = registry.register(checkpoint, name)
    markdown = card_markdown(entry.card)
    entry.path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return entry


def entry_summary(entry: ModelEntry, promoted: bool = False) -> dict[str, Any]:
    """What ``blsnode models list`` shows of an entry."""
    metadata = entry.card.get("metadata", {})
    return {
        "name": entry.name,
        "kind": entry.kind,
        "version": entry.version,
        "path": str(entry.path),
        "shipped": entry.shipped,
        "promoted": promoted,
        "date": metadata.get("date"),
        "metrics": metadata.get("metrics", {}),
    }


def promoted_names(registry: ModelRegistry, entries: list[ModelEntry]) -> set[str]:
    """Names of the entries that are the promoted model of their kind."""
    names = set()
    for kind in {entry.kind for entry in entries}:
        chosen = registry.promoted(kind)
        if chosen is not None:
            names.add(chosen.name)
    return names
