"""The layer image generator G: ``L = sigmoid(G(cat[J, M_1..M_n])) * M``.

The joint image and the ``n`` bone masks go in as ``1 + n`` channels; the backbone gives
``n`` logit maps; a sigmoid keeps layer images in [0, 1] (grey values, bright =
absorbing) and the masks zero every layer outside its own bone, as the paper's
``L = G(J, M) * M`` requires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from blsgan_core.networks.backbones import build_backbone, resolved_options


@dataclass(frozen=True)
class GeneratorConfig:
    """Number of layers and the backbone: a registry name and its options (defaults filled in)."""

    n_layers: int = 2
    backbone: str = "unet"
    backbone_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.n_layers, int) or self.n_layers < 1:
            raise ValueError(f"GeneratorConfig.n_layers must be >= 1, got {self.n_layers!r}")
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

    def forward(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``image`` ``(B, 1, H, W)``, ``masks`` ``(B, n, H, W)`` -> layers ``(B, n, H, W)``."""
        if image.dim() != 4 or image.shape[1] != 1:
            raise ValueError(f"image must be (B, 1, H, W), got {tuple(image.shape)}")
        expected = (image.shape[0], self.config.n_layers, *image.shape[2:])
        if tuple(masks.shape) != expected:
            raise ValueError(f"masks must be {expected}, got {tuple(masks.shape)}")
        masks = masks.to(image.dtype)
        logits = self.backbone(torch.cat([image, masks], dim=1))
        return torch.sigmoid(logits) * masks
