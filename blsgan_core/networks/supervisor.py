"""The supervisor D: a segmentation network that judges a stack of layer images per pixel.

Input: the ``n`` layer images of one joint, ``(B, n, H, W)``. Output: ``2n`` logit maps.
Channels ``0..n-1`` say, for layer ``i``, "this pixel does not look like an overlap"
(1) versus "it does" (0); channels ``n..2n-1`` say "this pixel of layer ``i`` is real"
(1) versus "generated" (0). Outside the bone both are 0. The targets are built in
:mod:`blsgan_core.losses` (Eq. 2 and Eq. 3).

Resolution: the reference trains D at full resolution, and that dominates its training
time. ``scale`` average-pools the layer stack by that factor before the backbone and
resizes the logits back (bilinear), so losses are still computed at full resolution
against full-resolution masks. ``scale=2`` quarters D's cost; what D must judge
(overlap ghosts and texture at the scale of the overlap band, >= 2 px) survives a 2x
pooling. ``scale=1`` restores the reference's full-resolution supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from blsgan_core.networks.backbones import build_backbone, resolved_options


@dataclass(frozen=True)
class SupervisorConfig:
    """Layers, backbone (registry name and options, defaults filled in) and D's downsampling."""

    n_layers: int = 2
    backbone: str = "unet"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    scale: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.n_layers, int) or self.n_layers < 1:
            raise ValueError(f"SupervisorConfig.n_layers must be >= 1, got {self.n_layers!r}")
        if not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(
                f"SupervisorConfig.scale must be a positive integer, got {self.scale!r}"
            )
        # Spell out every backbone option now: a bad name or option fails here, equal
        # networks have equal configs, and a later change of a registry default cannot
        # change how a saved config is rebuilt.
        resolved = resolved_options(
            self.backbone,
            in_channels=self.n_layers,
            out_channels=2 * self.n_layers,
            options=self.backbone_options,
        )
        object.__setattr__(self, "backbone_options", resolved)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint, with every backbone option spelled out."""
        return {
            "n_layers": self.n_layers,
            "backbone": self.backbone,
            "backbone_options": dict(self.backbone_options),
            "scale": self.scale,
        }


class Supervisor(nn.Module):
    """Per-pixel judge of a layer stack: ``n`` overlap channels, then ``n`` realness channels."""

    def __init__(self, config: SupervisorConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(
            config.backbone,
            in_channels=config.n_layers,
            out_channels=2 * config.n_layers,
            options=config.backbone_options,
        )

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        """``(B, n, H, W)`` layer images -> ``(B, 2n, H, W)`` logits."""
        if layers.dim() != 4 or layers.shape[1] != self.config.n_layers:
            raise ValueError(
                f"layers must be (B, {self.config.n_layers}, H, W), got {tuple(layers.shape)}"
            )
        scale = self.config.scale
        if scale == 1:
            return self.backbone(layers)
        if layers.shape[-2] % scale or layers.shape[-1] % scale:
            raise ValueError(
                f"layer size {tuple(layers.shape[-2:])} is not a multiple of scale={scale}"
            )
        logits = self.backbone(nn.functional.avg_pool2d(layers, scale))
        return nn.functional.interpolate(
            logits, size=layers.shape[-2:], mode="bilinear", align_corners=False
        )
