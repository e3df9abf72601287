"""The BLS-GAN model: generator + reconstructor (+ supervisor while training), and its checkpoint.

A checkpoint of kind ``"blsgan"`` carries the config of every network (with all backbone
options spelled out) and their weights; :func:`model_from_checkpoint` rebuilds the model
from the file alone, so the worker never needs the trainer. The supervisor is only
needed to train; inference checkpoints may leave it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from blsgan_core.networks.generator import Generator, GeneratorConfig
from blsgan_core.networks.reconstructor import Reconstructor, ReconstructorConfig
from blsgan_core.networks.supervisor import Supervisor, SupervisorConfig
from blsgan_core.reconstruction import reconstruct
from blsgan_core.seam_modes import BLEND_MODES

MODEL_KIND = "blsgan"


@dataclass(frozen=True)
class BLSGANConfig:
    """Configs of the three networks, the correction switch (False = k fixed to 1) and
    ``boundary_blend``.

    ``boundary_blend`` is a departure from the paper, ``"off"`` by default: a seam step
    after the generator (:data:`blsgan_core.seam_modes.BLEND_MODES`). ``"poisson"`` replaces
    each layer by the input outside the overlap and blends it into that surround inside
    it, Eq. 1 recomputed; ``"exchange"`` moves brightness between the two layers inside
    the overlap so that each meets its own bone, keeping Eq. 1's reconstruction. Why:
    generators leave a brightness offset with a hard edge along the overlap boundary (a
    seam) whose texture is right but whose level is not.
    """

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    reconstructor: ReconstructorConfig = field(default_factory=ReconstructorConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    correction: bool = True
    boundary_blend: str = "off"

    def __post_init__(self) -> None:
        if self.boundary_blend not in BLEND_MODES:
            raise ValueError(
                f"boundary_blend must be one of {BLEND_MODES}, got {self.boundary_blend!r}"
            )
        if self.generator.n_layers != self.supervisor.n_layers:
            raise ValueError(
                f"generator has {self.generator.n_layers} layers but the supervisor "
                f"{self.supervisor.n_layers}"
            )
        if self.reconstructor.mask_channels not in (0, self.generator.n_layers):
            raise ValueError(
                f"the reconstructor sees {self.reconstructor.mask_channels} masks; it must be 0 "
                f"(k = R(J), the paper's) or the {self.generator.n_layers} layers' masks"
            )
        if self.reconstructor.in_channels != 1:
            raise ValueError(
                "the reconstructor regresses k from the joint image alone (in_channels=1), "
                f"got in_channels={self.reconstructor.in_channels}"
            )

    @property
    def n_layers(self) -> int:
        """Number of bone layers (2 for an MCP joint)."""
        return self.generator.n_layers

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return {
            "generator": self.generator.to_dict(),
            "reconstructor": self.reconstructor.to_dict(),
            "supervisor": self.supervisor.to_dict(),
            "correction": self.correction,
            "boundary_blend": self.boundary_blend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BLSGANConfig:
        """Inverse of :meth:`to_dict`; a missing or unknown key is a ``ValueError``, except
        ``boundary_blend``, which checkpoints written before it existed lack (off), and
        which those written before the exchange mode hold as true (poisson) or false."""
        try:
            return cls(
                generator=GeneratorConfig(**data["generator"]),
                reconstructor=ReconstructorConfig(**data["reconstructor"]),
                supervisor=SupervisorConfig(**data["supervisor"]),
                correction=bool(data["correction"]),
                boundary_blend=_blend_mode(data.get("boundary_blend", "off")),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a BLS-GAN config: {error}") from error


def _blend_mode(value: object) -> str:
    """A checkpoint's ``boundary_blend``: a mode, or the switch older checkpoints hold."""
    if isinstance(value, bool):
        return "poisson" if value else "off"
    return str(value)


class BLSGANModel(nn.Module):
    """Generator and reconstructor; the supervisor too when built for training."""

    def __init__(self, config: BLSGANConfig, *, with_supervisor: bool = False) -> None:
        super().__init__()
        self.config = config
        self.generator = Generator(config.generator)
        self.reconstructor = Reconstructor(config.reconstructor)
        self.supervisor: Supervisor | None = (
            Supervisor(config.supervisor) if with_supervisor else None
        )
        self.version = "untrained"
        self.metadata: dict[str, Any] = {}

    def correction(self, image: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """k per image ``(B,)``: the reconstructor's, or ones in the no-correction ablation.

        ``masks`` reach the reconstructor only if it was built to see them
        (``ReconstructorConfig.mask_channels``); the paper's ``k = R(J)`` ignores them.
        """
        if not self.config.correction:
            return torch.ones(image.shape[0], dtype=image.dtype, device=image.device)
        if self.config.reconstructor.mask_channels:
            return self.reconstructor(image, masks)
        return self.reconstructor(image)

    def forward(
        self, image: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(layers (B, n, H, W), k (B,), reconstruction (B, 1, H, W))`` of Eq. 1."""
        layers = self.generator(image, masks)
        k = self.correction(image, masks)
        return layers, k, reconstruct(layers, masks.to(layers.dtype), k)


def model_checkpoint(
    model: BLSGANModel,
    version: str,
    metadata: dict[str, Any] | None = None,
    *,
    include_supervisor: bool = False,
) -> Checkpoint:
    """A checkpoint of ``model``; the supervisor is included only on request (training)."""
    state = {
        "generator": model.generator.state_dict(),
        "reconstructor": model.reconstructor.state_dict(),
    }
    if include_supervisor:
        if model.supervisor is None:
            raise ValueError("the model has no supervisor to include")
        state["supervisor"] = model.supervisor.state_dict()
    return Checkpoint(MODEL_KIND, version, model.config.to_dict(), state, dict(metadata or {}))


def model_from_checkpoint(checkpoint: Checkpoint, *, with_supervisor: bool = False) -> BLSGANModel:
    """Rebuild a model from a checkpoint alone (weights on the CPU, eval mode)."""
    if checkpoint.kind != MODEL_KIND:
        raise ValueError(f"checkpoint holds a {checkpoint.kind!r} model, not {MODEL_KIND!r}")
    model = BLSGANModel(BLSGANConfig.from_dict(checkpoint.config), with_supervisor=with_supervisor)
    names = ["generator", "reconstructor"] + (["supervisor"] if with_supervisor else [])
    for name in names:
        if name not in checkpoint.state:
            raise ValueError(f"checkpoint has no weights for the {name}")
        getattr(model, name).load_state_dict(checkpoint.state[name])
    model.version = checkpoint.version
    model.metadata = dict(checkpoint.metadata)
    return model.eval()


def save_model(
    path: Path,
    model: BLSGANModel,
    version: str,
    metadata: dict[str, Any] | None = None,
    *,
    include_supervisor: bool = False,
    half: bool = False,
) -> None:
    """Write ``model`` as a ``"blsgan"`` checkpoint (atomically; fp16 with ``half``)."""
    checkpoint = model_checkpoint(model, version, metadata, include_supervisor=include_supervisor)
    save_checkpoint(path, checkpoint, half=half)


def load_model(path: Path, *, device: str | torch.device = "cpu") -> BLSGANModel:
    """Read a ``"blsgan"`` checkpoint and return the inference model on ``device``."""
    model = model_from_checkpoint(load_checkpoint(path, expected_kind=MODEL_KIND))
    return model.to(device)
