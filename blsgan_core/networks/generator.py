"""The layer image generator G: ``L = sigmoid(G(cat[J, M_1..M_n])) * M``.

The joint image and the ``n`` bone masks go in as ``1 + n`` channels; the backbone gives
``n`` logit maps; a sigmoid keeps layer images in [0, 1] (grey values, bright =
absorbing) and the masks zero every layer outside its own bone, as the paper's
``L = G(J, M) * M`` requires.

With ``input_skip`` the backbone predicts a correction of the identity layers instead:
``logits = logit(J) + backbone(cat[J, M])`` with the backbone's last convolution
initialised to zero, so a fresh generator returns ``J * M_i`` (each layer is the input
inside its bone) and training only has to learn the separation inside the overlap,
rather than learning from scratch to copy the bone texture that fills ~99 % of each
layer. ``G`` is still a function of ``J`` and ``M``, so Eq. ``L = G(J, M) * M`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from blsgan_core.networks.backbones import build_backbone, resolved_options

#: ``J`` is clamped to ``[SKIP_EPS, 1 - SKIP_EPS]`` before the logit of the input skip:
#: black or white pixels would give infinite logits, and a sigmoid slope of ~1e-3 at the
#: clamp still lets training move them. The identity is exact to within ``SKIP_EPS``.
SKIP_EPS = 1e-3


@dataclass(frozen=True)
class GeneratorConfig:
    """Number of layers, the backbone (a registry name and its options, defaults filled in)
    and whether the backbone corrects the identity layers (``input_skip``).

    ``input_skip`` defaults to False: checkpoints written before the option existed have
    no such key and are rebuilt as they were trained.
    """

    n_layers: int = 2
    backbone: str = "unet"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    input_skip: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n_layers, int) or self.n_layers < 1:
            raise ValueError(f"GeneratorConfig.n_layers must be >= 1, got {self.n_layers!r}")
        if not isinstance(self.input_skip, bool):
            raise TypeError(f"GeneratorConfig.input_skip must be a bool, got {self.input_skip!r}")
        # Spell out every backbone option now: a bad name or option fails here, equal
        # networks have equal configs, and a later change of a registry default cannot
        # change how a saved config is rebuilt.
        resolved = resolved_options(
            self.backbone,
            in_channels=self.in_channels,
            out_channels=self.n_layers,
            options=self.backbone_options,
        )
        object.__setattr__(self, "backbone_options", resolved)

    @property
    def in_channels(self) -> int:
        """The joint image plus one mask per layer."""
        return 1 + self.n_layers

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint, with every backbone option spelled out."""
        return {
            "n_layers": self.n_layers,
            "backbone": self.backbone,
            "backbone_options": dict(self.backbone_options),
            "input_skip": self.input_skip,
        }


class Generator(nn.Module):
    """Maps a joint image and its bone masks to one layer image per bone."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(
            config.backbone,
            in_channels=config.in_channels,
            out_channels=config.n_layers,
            options=config.backbone_options,
        )
        if config.input_skip:
            _zero_last_layer(self.backbone, config.backbone)

    def forward(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``image`` ``(B, 1, H, W)``, ``masks`` ``(B, n, H, W)`` -> layers ``(B, n, H, W)``."""
        if image.dim() != 4 or image.shape[1] != 1:
            raise ValueError(f"image must be (B, 1, H, W), got {tuple(image.shape)}")
        expected = (image.shape[0], self.config.n_layers, *image.shape[2:])
        if tuple(masks.shape) != expected:
            raise ValueError(f"masks must be {expected}, got {tuple(masks.shape)}")
        masks = masks.to(image.dtype)
        logits = self.backbone(torch.cat([image, masks], dim=1))
        if self.config.input_skip:
            logits = logits + torch.logit(image, eps=SKIP_EPS)
        return torch.sigmoid(logits) * masks


def _zero_last_layer(backbone: nn.Module, name: str) -> None:
    """Zero the output convolution so that the backbone starts as the zero correction.

    Its weight still receives gradients (the features before it are not zero), so the
    correction grows from the first step, as in zero-initialised residual branches.
    """
    head = getattr(backbone, "head", None)
    if not isinstance(head, nn.Conv2d):
        raise ValueError(
            f"input_skip needs a backbone with an output convolution `head`; {name!r} has none"
        )
    nn.init.zeros_(head.weight)
    if head.bias is not None:
        nn.init.zeros_(head.bias)
