"""The checkpoint file format: weights plus everything needed to rebuild and trust them.

A checkpoint is a plain ``torch.save`` of JSON-like data and tensors, loaded with
``weights_only=True`` so that a checkpoint file can never execute code. It names its kind
("blsgan", "segmenter", "localiser"), carries the architecture config of every network it
holds, a version string and free metadata (training command, data digest, commit,
metrics). The module that owns a kind rebuilds its networks from ``config`` alone; no
trainer code is needed to load a model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """Named state dicts of one model, with their config and provenance."""

    kind: str
    version: str
    config: dict[str, Any]
    state: dict[str, dict[str, torch.Tensor]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.kind:
            raise ValueError("a checkpoint needs a kind")
        if not self.version:
            raise ValueError("a checkpoint needs a version string")


@contextmanager
def atomic_file(path: Path, text: bool = False, newline: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` through a temp file beside it, fsync, rename: whole or not at all.

    A kill leaves the old file or the new one, never a torn one, so checkpoints, training
    states, model cards and run logs can be trusted after a crash. ``text`` opens it as
    UTF-8 text (``newline`` as ``open`` takes it) instead of bytes; the temp file is
    removed if the block raises.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(
            temporary,
            "w" if text else "wb",
            encoding="utf-8" if text else None,
            newline=newline if text else None,
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` atomically (``atomic_file``): checkpoints and training states."""
    with atomic_file(path) as handle:
        torch.save(payload, handle)


def read_payload(path: Path, what: str) -> Any:
    """``torch.load`` onto the CPU with ``weights_only=True``: a file never executes code.

    Any failure becomes a ``ValueError`` saying ``path`` is not a readable ``what``.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise ValueError(f"{path} is not a readable {what}: {error}") from error


def save_checkpoint(path: Path, checkpoint: Checkpoint, *, half: bool = False) -> None:
    """Write atomically (temp file, fsync, rename); ``half`` stores float tensors as fp16."""

    def convert(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach().cpu()
        return tensor.half() if half and tensor.is_floating_point() else tensor.clone()

    payload = {
        "format_version": FORMAT_VERSION,
        "kind": checkpoint.kind,
        "version": checkpoint.version,
        "config": checkpoint.config,
        "state": {
            name: {key: convert(value) for key, value in tensors.items()}
            for name, tensors in checkpoint.state.items()
        },
        "metadata": checkpoint.metadata,
    }
    write_payload(path, payload)


def load_checkpoint(path: Path, *, expected_kind: str | None = None) -> Checkpoint:
    """Read a checkpoint onto the CPU; raise ``ValueError`` if it is not one we can use.

    Tensors stored as fp16 are returned as fp16; ``load_state_dict`` casts them to the
    network's dtype.
    """
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    payload = read_payload(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a blsgan-node checkpoint of format {FORMAT_VERSION}")
    checkpoint = Checkpoint(
        kind=payload["kind"],
        version=payload["version"],
        config=payload["config"],
        state=payload["state"],
        metadata=payload.get("metadata", {}),
    )
    if expected_kind is not None and checkpoint.kind != expected_kind:
        raise ValueError(f"{path} holds a {checkpoint.kind!r} model, not {expected_kind!r}")
    return checkpoint


def file_digest(path: Path) -> str:
    """SHA-256 of a file, for model cards and data provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
