"""A configurable 2-D U-Net: the default image-to-image backbone of the project.

Used by the generator, the supervisor, the bone segmenter and the joint localiser, each
with its own channel counts. GroupNorm rather than BatchNorm so that batch 1 at inference
and small training batches behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a U-Net; ``depth`` poolings, channels doubling from ``base_channels``."""

    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 32
    depth: int = 4
    max_channels: int = 512
    groups: int = 8

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "base_channels", "depth", "max_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"UNetConfig.{name} must be a positive integer, got {value!r}")
        if self.base_channels % self.groups:
            raise ValueError(
                f"UNetConfig.base_channels={self.base_channels} must be a multiple of "
                f"groups={self.groups}"
            )

    def channels(self, level: int) -> int:
        """Feature channels at a resolution level (0 = full resolution)."""
        return min(self.base_channels * 2**level, self.max_channels)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return int(2**self.depth)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by GroupNorm and SiLU."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(min(groups, out_channels), out_channels),
            nn.SiLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(min(groups, out_channels), out_channels),
            nn.SiLU(inplace=True),
        )


class UNet(nn.Module):
    """Encoder-decoder with skip connections; returns raw logits (no output activation)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.encoders = nn.ModuleList(
            [ConvBlock(config.in_channels, c(0), config.groups)]
            + [ConvBlock(c(i - 1), c(i), config.groups) for i in range(1, config.depth + 1)]
        )
        self.upsamplers = nn.ModuleList(
            [nn.ConvTranspose2d(c(i), c(i - 1), 2, stride=2) for i in range(config.depth, 0, -1)]
        )
        self.decoders = nn.ModuleList(
            [ConvBlock(2 * c(i - 1), c(i - 1), config.groups) for i in range(config.depth, 0, -1)]
        )
        self.head = nn.Conv2d(c(0), config.out_channels, 1)
        # Hook for variants that transform the deepest features (TransUNet); no parameters
        # here, so plain U-Net checkpoints are unaffected.
        self.bottleneck: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        multiple = self.config.size_multiple
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"U-Net input of size {tuple(x.shape[-2:])} is not a multiple of {multiple}"
            )
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = self.bottleneck(skips.pop())
        for upsample, decoder in zip(self.upsamplers, self.decoders, strict=True):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.head(x)
