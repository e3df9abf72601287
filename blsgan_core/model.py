"""The BLS-GAN model: generator + reconstructor (+ supervisor while training), and its checkpoint.

A checkpoint of kind ``"blsgan"`` carries the config of every network (with all backbone
options spelled out) and their weights; :func:`model_from_checkpoint` rebuilds the model
from the file alone, so the worker never needs the trainer. The supervisor is only
needed to train; inference checkpoints may leave it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from blsgan_core.joint_window import joint_window
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
    the overlap so that each meets its own bone, keeping Eq. 1's reconstruction;
    ``"eq1-exchange"`` first makes the layers reproduce the input by Eq. 1 inside the
    overlap, pixel by pixel, then exchanges; ``"eq1-split"`` exchanges the generator's own
    layers by the field found on those projected ones, ``"eq1-offset"`` by its mean over the
    overlap. Why: generators leave a brightness offset with a hard edge along the overlap
    boundary (a seam) whose texture is right but whose level is not, and their layers miss
    Eq. 1 there.

    ``offset_bias`` (log transmittance, 0 by default, only with ``"eq1-offset"``) is added
    to that mean: its calibration, fitted for each model on synthetic overlaps of its
    training joints (:mod:`trainer.evaluation.offset_calibration`). Why: there the mean
    falls short of the constant that brings the layers closest to their true ones by a
    nearly fixed amount, the same at every overlap size (docs/training.md, session 18).

    ``reconstructor_window`` (px; 0 = the whole input, as the paper, which trains and
    infers on whole 256 px joints): k is regressed from this square around the joint space
    (:func:`blsgan_core.joint_window.joint_window`) instead of the whole input. The trainer
    sets it to its crop size, so a model trained on 128 px windows of the joints (the
    ``cpu`` presets) reads k at inference from what it was trained on. Why: the
    reconstructor pools globally, and on a whole joint the extra bone and background
    flatten its k: on held-out synthetic overlaps the shipped model's k followed the true
    k with r 0.74 (k's spread 0.008 against the true 0.045) on the whole joint and r 0.86
    (spread 0.035) on its training window (docs/training.md, "k's window").

    ``mask_margin_px`` (px; 0 = the masks as given, the paper's): every given mask is
    widened by this margin (:func:`blsgan_core.mask_margin.widen_masks`) before the
    networks, Eq. 1 and the seam step see it. The trainer sets it from
    ``DataSection.mask_margin_px``, so a model meets at inference the masks it was
    trained on. Why: a segmenter's mask that leaves out bone of its own forces the layer
    to 0 there, which cost the node's path most of its error in the overlap
    (:mod:`blsgan_core.mask_margin`).
    """

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    reconstructor: ReconstructorConfig = field(default_factory=ReconstructorConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    correction: bool = True
    boundary_blend: str = "off"
    reconstructor_window: int = 0
    offset_bias: float = 0.0
    mask_margin_px: int = 0

    def __post_init__(self) -> None:
        margin = self.mask_margin_px
        if isinstance(margin, bool) or not isinstance(margin, int) or not 0 <= margin <= 8:
            raise ValueError(f"mask_margin_px must be an integer in [0, 8], got {margin!r}")
        if isinstance(self.reconstructor_window, bool) or not isinstance(
            self.reconstructor_window, int
        ):
            raise ValueError(
                f"reconstructor_window must be an integer, got {self.reconstructor_window!r}"
            )
        if self.reconstructor_window < 0:
            raise ValueError(
                f"reconstructor_window must be >= 0 (0: whole input), got "
                f"{self.reconstructor_window}"
            )
        if self.boundary_blend not in BLEND_MODES:
            raise ValueError(
                f"boundary_blend must be one of {BLEND_MODES}, got {self.boundary_blend!r}"
            )
        if not math.isfinite(self.offset_bias) or abs(self.offset_bias) >= 1.0:
            raise ValueError(
                f"offset_bias must be finite and within (-1, 1), got {self.offset_bias}"
            )
        if self.offset_bias and self.boundary_blend != "eq1-offset":
            raise ValueError(
                f"offset_bias calibrates the eq1-offset step; boundary_blend is "
                f"{self.boundary_blend!r}"
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
            "reconstructor_window": self.reconstructor_window,
            "offset_bias": self.offset_bias,
            "mask_margin_px": self.mask_margin_px,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BLSGANConfig:
        """Inverse of :meth:`to_dict`; a missing or unknown key is a ``ValueError``, except
        ``boundary_blend``, which checkpoints written before it existed lack (off), and
        which those written before the exchange mode hold as true (poisson) or false,
        ``reconstructor_window``, which older checkpoints lack (0: the whole input),
        ``offset_bias`` (0: uncalibrated) and ``mask_margin_px`` (0: the masks as given)."""
        try:
            return cls(
                generator=GeneratorConfig(**data["generator"]),
                reconstructor=ReconstructorConfig(**data["reconstructor"]),
                supervisor=SupervisorConfig(**data["supervisor"]),
                correction=bool(data["correction"]),
                boundary_blend=_blend_mode(data.get("boundary_blend", "off")),
                reconstructor_window=data.get("reconstructor_window", 0),
                offset_bias=float(data.get("offset_bias", 0.0)),
                mask_margin_px=data.get("mask_margin_px", 0),
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
        image, masks = self._reconstructor_window(image, masks)
        if self.config.reconstructor.mask_channels:
            return self.reconstructor(image, masks)
        return self.reconstructor(image)

    def _reconstructor_window(
        self, image: torch.Tensor, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each joint's ``reconstructor_window`` around its joint space (needs ``masks``);
        the inputs unchanged where the window covers them or is 0."""
        size = self.config.reconstructor_window
        if not size or masks is None or size >= min(image.shape[-2:]):
            return image, masks
        windows = [joint_window(joint.detach().cpu().numpy() > 0.5, size) for joint in masks]
        return (
            torch.stack([image[i, :, rows, cols] for i, (rows, cols) in enumerate(windows)]),
            torch.stack([masks[i, :, rows, cols] for i, (rows, cols) in enumerate(windows)]),
        )

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
