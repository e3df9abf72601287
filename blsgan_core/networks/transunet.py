"""A TransUNet-style backbone: the project's U-Net with a transformer at its bottleneck.

The reference implementation used TransUNet (a CNN encoder, a ViT over the 1/16-scale
feature map, a CNN decoder with skips). This is the same idea built on our U-Net so that
encoder, decoder and normalisation are shared code; it is the "heavier" generator option
of the backbone registry. Tokens are the pixels of the deepest feature map; a learned
positional embedding for a ``grid_size`` x ``grid_size`` map is resized bilinearly when
the input size differs, so the network is not tied to 256 x 256 inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from blsgan_core.networks.unet import UNet, UNetConfig


@dataclass(frozen=True)
class TransUNetConfig(UNetConfig):
    """U-Net shape plus the transformer bottleneck's width, heads and depth."""

    embed_dim: int = 384
    heads: int = 6
    layers: int = 8
    mlp_ratio: int = 4
    grid_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("embed_dim", "heads", "layers", "mlp_ratio", "grid_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"TransUNetConfig.{name} must be a positive integer, got {value!r}"
                )
        if self.embed_dim % self.heads:
            raise ValueError(
                f"TransUNetConfig.embed_dim={self.embed_dim} must be a multiple of "
                f"heads={self.heads}"
            )


class TransformerBottleneck(nn.Module):
    """Project feature pixels to tokens, run pre-norm transformer layers, project back."""

    def __init__(self, channels: int, config: TransUNetConfig) -> None:
        super().__init__()
        self.grid_size = config.grid_size
        self.project_in = nn.Conv2d(channels, config.embed_dim, 1)
        self.position = nn.Parameter(
            torch.randn(1, config.embed_dim, config.grid_size, config.grid_size) * 0.02
        )
        layer = nn.TransformerEncoderLayer(
            d_model=config.embed_dim,
            nhead=config.heads,
            dim_feedforward=config.mlp_ratio * config.embed_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, num_layers=config.layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(config.embed_dim)
        self.project_out = nn.Conv2d(config.embed_dim, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        position: torch.Tensor = self.position
        if (height, width) != (self.grid_size, self.grid_size):
            position = nn.functional.interpolate(
                position, size=(height, width), mode="bilinear", align_corners=False
            )
        tokens = (self.project_in(x) + position).flatten(2).transpose(1, 2)
        tokens = self.norm(self.transformer(tokens))
        features = tokens.transpose(1, 2).reshape(batch, -1, height, width)
        # Residual around the whole bottleneck: the U-Net path still works at init.
        return x + self.project_out(features)


class TransUNet(UNet):
    """U-Net encoder and decoder with :class:`TransformerBottleneck` between them."""

    def __init__(self, config: TransUNetConfig) -> None:
        super().__init__(config)
        self.bottleneck = TransformerBottleneck(config.channels(config.depth), config)
