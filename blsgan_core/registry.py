"""The model registry: a directory of checkpoints with model cards and promoted choices.

Layout (default directory: ``settings.model_registry_dir``)::

    <name>.pt        a checkpoint (blsgan_core.checkpoint format)
    <name>.json      its model card: kind, version, sha256, metrics, provenance
    <name>.md        optional human-readable card
    promoted.json    {"<kind>": "<name>", ...}: the model each kind uses in production

The worker asks :meth:`ModelRegistry.promoted` for the model of a kind and loads it; the
trainer registers and promotes (``blsnode models``). When nothing of a kind is promoted,
the weights shipped inside the package (``blsgan_core/weights/``, same layout, may be
empty) are the fallback, so a fresh install works as soon as weights ship with it.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blsgan_core.checkpoint import (
    Checkpoint,
    atomic_file,
    file_digest,
    load_checkpoint,
    save_checkpoint,
)

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
PROMOTED_FILE = "promoted.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its checkpoint file and its model card."""

    name: str
    kind: str
    version: str
    path: Path
    card: dict[str, Any]
    shipped: bool = False


@dataclass(frozen=True)
class ModelChoice:
    """Which model of a kind is used, and why (for ``blsnode models list`` and errors)."""

    kind: str
    entry: ModelEntry | None
    reason: str


def validate_name(name: str) -> str:
    """A model name is a file stem: letters, digits, ``.``, ``_``, ``-``; no paths."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".pt"):
        raise ValueError(
            f"invalid model name {name!r}: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without the .pt suffix"
        )
    return name


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path, text=True) as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def model_card(checkpoint: Checkpoint, name: str, sha256: str) -> dict[str, Any]:
    """The JSON model card of a checkpoint: identity, digest, config and its metadata."""
    return {
        "name": name,
        "kind": checkpoint.kind,
        "version": checkpoint.version,
        "sha256": sha256,
        "registered": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": checkpoint.config,
        "metadata": checkpoint.metadata,
    }


class ModelRegistry:
    """A registry directory, with the package's shipped weights as read-only fallback."""

    @classmethod
    def for_node(cls, directory: Path, use_shipped_weights: bool) -> ModelRegistry:
        """A node's registry; a site that allows only its own models turns the fallback off."""
        return cls(directory, SHIPPED_WEIGHTS_DIR if use_shipped_weights else None)

    def __init__(self, directory: Path, shipped_dir: Path | None = SHIPPED_WEIGHTS_DIR) -> None:
        self.directory = Path(directory)
        self.shipped_dir = shipped_dir

    @staticmethod
    def _entry(path: Path, shipped: bool) -> ModelEntry:
        card_path = path.with_suffix(".json")
        if card_path.is_file():
            card = _read_json(card_path)
        else:  # a checkpoint copied in by hand: describe it from the file itself
            card = model_card(load_checkpoint(path), path.stem, file_digest(path))
        return ModelEntry(
            path.stem, str(card.get("kind", "")), str(card.get("version", "")), path, card, shipped
        )

    def _entries(self, directory: Path | None, shipped: bool) -> list[ModelEntry]:
        if directory is None or not directory.is_dir():
            return []
        return [self._entry(path, shipped) for path in sorted(directory.glob("*.pt"))]

    def list_models(self, kind: str | None = None) -> list[ModelEntry]:
        """Registered models (then shipped ones not shadowed by name), optionally of a kind."""
        own = self._entries(self.directory, shipped=False)
        names = {entry.name for entry in own}
        shipped = [e for e in self._entries(self.shipped_dir, shipped=True) if e.name not in names]
        return [entry for entry in own + shipped if kind is None or entry.kind == kind]

    def get(self, name: str) -> ModelEntry:
        """The model called ``name`` (registered first, then shipped); ``ValueError`` if none.

        Only that model's files are read, so a stray broken file elsewhere in the
        directory cannot stop the worker from loading its promoted model.
        """
        validate_name(name)
        for directory, shipped in ((self.directory, False), (self.shipped_dir, True)):
            if directory is not None and (directory / f"{name}.pt").is_file():
                return self._entry(directory / f"{name}.pt", shipped)
        raise ValueError(f"no model named {name!r} in {self.directory}")

    def register(
        self, source: Path | Checkpoint, name: str, *, card_markdown: str | None = None
    ) -> ModelEntry:
        """Copy a checkpoint file (or write a ``Checkpoint``) in as ``name``, with its card.

        Refuses to overwrite: a name identifies one set of weights forever.
        """
        validate_name(name)
        target = self.directory / f"{name}.pt"
        if target.exists():
            raise ValueError(f"a model named {name!r} already exists in {self.directory}")
        self.directory.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Checkpoint):
            checkpoint = source
            save_checkpoint(target, checkpoint)
        else:
            checkpoint = load_checkpoint(Path(source))
            with atomic_file(target) as handle, open(source, "rb") as original:
                shutil.copyfileobj(original, handle)
        _write_json(target.with_suffix(".json"), model_card(checkpoint, name, file_digest(target)))
        if card_markdown is not None:
            target.with_suffix(".md").write_text(card_markdown, encoding="utf-8")
        return self.get(name)

    def promote(self, name: str) -> ModelEntry:
        """Make ``name`` the model its kind uses; returns the promoted entry."""
        entry = self.get(name)
        if not entry.kind:
            raise ValueError(f"model {name!r} has no kind in its card")
        choices = self._promotions(self.directory)
        choices[entry.kind] = entry.name
        self.directory.mkdir(parents=True, exist_ok=True)
        _write_json(self.directory / PROMOTED_FILE, choices)
        return entry

    def choose(self, kind: str, label: str | None = None) -> ModelChoice:
        """The model ``kind`` uses: the registry's promotion, else the shipped default.

        This is the one place that decides. Among shipped weights the shipped
        ``promoted.json`` decides, else the only model of that kind; with neither, the
        choice is empty and its reason (naming the kind as ``label``) says why.
        """
        label = label or kind
        chosen = self._promotions(self.directory).get(kind)
        if chosen is not None:
            entry = self.get(chosen)
            if entry.kind != kind:
                raise ValueError(f"promoted {kind!r} model {chosen!r} is a {entry.kind!r} model")
            return ModelChoice(kind, entry, f"promoted in {self.directory}")
        if self.shipped_dir is None:
            return ModelChoice(
                kind,
                None,
                f"no {label} model is promoted in {self.directory} and shipped weights are "
                "turned off (models.use_shipped_weights = false)",
            )
        shipped_choice = self._promotions(self.shipped_dir).get(kind)
        candidates = [e for e in self._entries(self.shipped_dir, shipped=True) if e.kind == kind]
        if shipped_choice is not None:
            candidates = [e for e in candidates if e.name == shipped_choice]
        if len(candidates) == 1:
            return ModelChoice(
                kind, candidates[0], f"shipped with the package; none promoted in {self.directory}"
            )
        return ModelChoice(
            kind,
            None,
            f"no {label} model is promoted in {self.directory} and no usable shipped weights "
            "of that kind",
        )

    def promoted(self, kind: str) -> ModelEntry | None:
        """The entry :meth:`choose` picks for ``kind``, ``None`` if there is none."""
        return self.choose(kind).entry

    def verify(self, entry: ModelEntry) -> None:
        """Raise ``ValueError`` unless the checkpoint file still matches its card's digest."""
        expected = entry.card.get("sha256")
        actual = file_digest(entry.path)
        if expected != actual:
            raise ValueError(
                f"model {entry.name!r}: {entry.path} has sha256 {actual}, its card says {expected}"
            )

    @staticmethod
    def _promotions(directory: Path | None) -> dict[str, str]:
        if directory is None or not (directory / PROMOTED_FILE).is_file():
            return {}
        data = _read_json(directory / PROMOTED_FILE)
        return {str(kind): str(name) for kind, name in data.items()}
