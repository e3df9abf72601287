"""The models of one worker process: loaded once, lazily, and swapped when one is promoted.

A worker serves for weeks while administrators train and promote new BLS-GAN models, so
``ModelCache.models()`` asks the registry which checkpoint each kind should use before
every job (a few small JSON reads) and loads only what changed; the job then runs on the
new model. Nothing is lost: the check happens inside the job, before its pipeline runs.

The localiser and the segmenter stay on the CPU: they are small, and their
``blsgan_core`` front ends feed CPU tensors. BLS-GAN, the expensive part, runs on the
configured device.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from blsgan_core.joints import Localiser, load_localiser
from blsgan_core.joints.model import KIND as LOCALISER_KIND
from blsgan_core.model import MODEL_KIND as BLSGAN_KIND
from blsgan_core.model import BLSGANModel, load_model
from blsgan_core.registry import PROMOTED_FILE, ModelRegistry
from blsgan_core.segment import Segmenter, load_segmenter
from blsgan_core.segment.model import KIND as SEGMENTER_KIND
from dicom_node.derived.model import ModelInfo
from dicom_node.settings import Settings
from worker.failures import PermanentError

logger = logging.getLogger(__name__)

KINDS = (LOCALISER_KIND, SEGMENTER_KIND, BLSGAN_KIND)
LABELS = {
    LOCALISER_KIND: "joint localiser",
    SEGMENTER_KIND: "bone segmenter",
    BLSGAN_KIND: "BLS-GAN",
}
ALGORITHM_NAME = "BLS-GAN"
_DICOM_LO = 64


@dataclass(frozen=True)
class ModelFile:
    """Which checkpoint a kind uses: a registry entry's name and file (or a given path)."""

    kind: str
    name: str
    path: Path
    reason: str = "given on the command line"

    def identity(self) -> tuple[str, int, int]:
        """Changes when another file is chosen or the file is replaced in place."""
        stat = self.path.stat()
        return str(self.path.resolve()), stat.st_mtime_ns, stat.st_size


@dataclass(frozen=True)
class Models:
    """What the pipeline runs, in eval mode, and who the derived objects name as author."""

    localiser: Localiser
    segmenter: Segmenter
    blsgan: BLSGANModel
    info: ModelInfo
    device: torch.device
    files: Mapping[str, ModelFile]

    def describe(self) -> dict[str, Any]:
        """Names, versions and files of the three models, for JSON reports and logs."""
        versions = {
            LOCALISER_KIND: self.localiser.version,
            SEGMENTER_KIND: self.segmenter.version,
            BLSGAN_KIND: self.blsgan.version,
        }
        return {
            kind: {"name": file.name, "version": versions[kind], "path": str(file.path)}
            for kind, file in self.files.items()
        } | {"device": str(self.device)}


def registry_for(settings: Settings) -> ModelRegistry:
    """The node's registry; the package's weights are the fallback unless the site said no."""
    return ModelRegistry.for_node(settings.model_registry_dir, settings.models.use_shipped_weights)


def choose_model(registry: ModelRegistry, kind: str, override: Path | None = None) -> ModelFile:
    """The checkpoint of ``kind`` a command or worker uses: ``override``, else the registry's.

    Every command (``serve``'s worker, ``worker``, ``process``, ``separate``, ``locate``,
    ``evaluate``) comes here, so they all run what ``blsnode models list`` says is in use.

    Raises
    ------
    PermanentError
        The override does not exist, or the registry has nothing usable of that kind.
    """
    if override is not None:
        if not Path(override).is_file():
            raise PermanentError(f"{LABELS[kind]} checkpoint {override} does not exist")
        return ModelFile(kind, Path(override).stem, Path(override))
    try:
        choice = registry.choose(kind, LABELS[kind])
    except ValueError as error:
        raise PermanentError(f"promoted {LABELS[kind]} model unusable: {error}") from error
    if choice.entry is None:
        raise PermanentError(f"{choice.reason} (blsnode models promote NAME)")
    return ModelFile(kind, choice.entry.name, choice.entry.path, choice.reason)


def parse_device(device: str) -> torch.device:
    """A torch device this machine has; ``ValueError`` naming the bad value otherwise."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown torch device {device!r}: {error}") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return parsed


class ModelCache:
    """Loads the promoted (or given) models on first use and reloads them when they change.

    One per worker process; ``overrides`` maps a kind to a checkpoint path that wins over
    the registry (``blsnode process --model``).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        device: str = "cpu",
        overrides: Mapping[str, Path] | None = None,
    ) -> None:
        unknown = set(overrides or {}) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown model kinds {sorted(unknown)}; known: {list(KINDS)}")
        self.registry = registry
        self.device = parse_device(device)
        self.overrides = {kind: Path(path) for kind, path in (overrides or {}).items()}
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[tuple[str, int, int], ModelFile, Any]] = {}
        # Which file each kind resolved to, valid while the registry's fingerprint holds.
        self._resolved: dict[str, ModelFile] = {}
        self._fingerprint: tuple[tuple[int, int] | None, ...] | None = None

    def models(self) -> Models:
        """The models to use now, loading or swapping whatever the registry changed.

        Raises
        ------
        PermanentError
            A kind has no usable model and none was loaded before (e.g. "no BLS-GAN model
            promoted"). A newly promoted model that cannot be loaded is logged and the
            previous one kept, so a bad promotion does not stop a serving worker.
        """
        with self._lock:
            fingerprint = self._registry_fingerprint()
            if fingerprint != self._fingerprint:
                self._resolved.clear()
                self._fingerprint = fingerprint
            for kind in KINDS:
                self._refresh(kind)
            blsgan: BLSGANModel = self._loaded[BLSGAN_KIND][2]
            files = {kind: entry[1] for kind, entry in self._loaded.items()}
            name = f"{ALGORITHM_NAME} {files[BLSGAN_KIND].name}"[:_DICOM_LO]
            return Models(
                localiser=self._loaded[LOCALISER_KIND][2],
                segmenter=self._loaded[SEGMENTER_KIND][2],
                blsgan=blsgan,
                info=ModelInfo(name=name, version=blsgan.version[:_DICOM_LO]),
                device=self.device,
                files=files,
            )

    def _refresh(self, kind: str) -> None:
        previous = self._loaded.get(kind)
        try:
            file = self._resolve(kind)
            identity = file.identity()
            if previous is not None and previous[0] == identity:
                return
            model = self._load(kind, file)
        except (PermanentError, OSError) as error:
            if previous is None:
                if isinstance(error, PermanentError):
                    raise
                raise PermanentError(f"{LABELS[kind]} model unreadable: {error}") from error
            logger.error(
                "keeping %s model %s: the registry's choice cannot be used: %s",
                LABELS[kind],
                previous[1].name,
                error,
            )
            return
        self._loaded[kind] = (identity, file, model)
        logger.info(
            "loaded %s model %s (version %s) from %s",
            LABELS[kind],
            file.name,
            model.version,
            file.path,
            extra={"model_kind": kind, "model_version": model.version},
        )

    def _registry_fingerprint(self) -> tuple[tuple[int, int] | None, ...]:
        """Changes when a model is promoted or the shipped weights change.

        Resolving a kind reads model cards (and, for a checkpoint without a card, the
        checkpoint itself); a few ``stat`` calls tell whether that must be done again.
        """
        parts: list[tuple[int, int] | None] = []
        for path in (self.registry.directory / PROMOTED_FILE, self.registry.shipped_dir):
            try:
                stat = path.stat() if path is not None else None
            except FileNotFoundError:
                stat = None
            parts.append((stat.st_mtime_ns, stat.st_size) if stat is not None else None)
        return tuple(parts)

    def _resolve(self, kind: str) -> ModelFile:
        if kind not in self._resolved:
            self._resolved[kind] = choose_model(self.registry, kind, self.overrides.get(kind))
        return self._resolved[kind]

    def _load(self, kind: str, file: ModelFile) -> Any:
        loaders: dict[str, Callable[[Path], Any]] = {
            LOCALISER_KIND: load_localiser,
            SEGMENTER_KIND: load_segmenter,
            BLSGAN_KIND: lambda path: load_model(path, device=self.device),
        }
        try:
            model = loaders[kind](file.path)
        except ValueError as error:  # not a checkpoint, or of another kind
            raise PermanentError(f"{LABELS[kind]} model {file.name}: {error}") from error
        except (KeyError, TypeError, RuntimeError) as error:  # a config or weights this code
            # cannot rebuild (a checkpoint of another version of the architecture)
            raise PermanentError(
                f"{LABELS[kind]} model {file.name} does not fit this version: "
                f"{type(error).__name__}: {error}"
            ) from error
        # Channels-last weights make oneDNN's convolutions about a quarter faster on the
        # CPU (same results to 1e-5); the inputs may stay in the usual layout.
        return model.eval().to(memory_format=torch.channels_last)
