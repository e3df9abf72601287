"""Networks at the published implementation's sizes, as the baseline of the benchmarks.

Rebuilt from the published architecture description (not its code), with the same layer
widths so that parameter counts, compute and memory match:

- generator: TransUNet, a ResNet-bottleneck CNN encoder (128 -> 1024 channels at 1/16
  scale), an 8-block ViT of width 1024 (4 heads, MLP 512) over the 16 x 16 map, and a CNN
  decoder with skips (~67 M parameters);
- reconstructor: VGG11 features on the joint image and an MLP 32768 -> 1024 -> 128 -> 1
  with a sigmoid (~43 M parameters, ~34 M of them in the MLP);
- supervisor: a full-resolution U-Net with 64 base channels, 4 poolings, 512 channels at
  most (~15 M parameters), run at full resolution as the reference does.

Only for measuring time and memory; never used to separate anything.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from blsgan_core.reconstruction import reconstruct


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _Bottleneck(nn.Module):
    """1x1 -> strided 3x3 -> 1x1 with a strided 1x1 shortcut (ResNet style)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, 2, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.body = nn.Sequential(
            _conv_bn_relu(in_channels, out_channels, 1),
            _conv_bn_relu(out_channels, out_channels, 3, 2),
            nn.Conv2d(out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class _Up(nn.Module):
    """Bilinear 2x upsampling, optional skip concatenation, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            _conv_bn_relu(in_channels, out_channels, 3),
            _conv_bn_relu(out_channels, out_channels, 3),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.convs(x if skip is None else torch.cat([skip, x], dim=1))


class BaselineTransUNet(nn.Module):
    """TransUNet at the reference's sizes: width 128, ViT 1024 x 8 blocks, 4 heads, MLP 512."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 128) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(in_channels, width, 7, 2)
        self.encoders = nn.ModuleList(
            [_Bottleneck(width, 2 * width), _Bottleneck(2 * width, 4 * width)]
        )
        self.deepest = _Bottleneck(4 * width, 8 * width)
        dim = 8 * width
        self.tokens = nn.Linear(dim, dim)
        self.position = nn.Parameter(torch.zeros(1, 16 * 16, dim))
        layer = nn.TransformerEncoderLayer(
            dim, 4, 512, dropout=0.1, activation="gelu", batch_first=True
        )
        self.vit = nn.TransformerEncoder(layer, 8, enable_nested_tensor=False)
        self.neck = _conv_bn_relu(dim, 512, 3)
        self.decoders = nn.ModuleList(
            [_Up(512 + 4 * width, 2 * width), _Up(4 * width, width), _Up(2 * width, width // 2)]
        )
        self.last = _Up(width // 2, width // 8)
        self.head = nn.Conv2d(width // 8, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for encoder in self.encoders:
            skips.append(encoder(skips[-1]))
        deep = self.deepest(skips[-1])
        batch, channels, height, width = deep.shape
        tokens = self.tokens(deep.flatten(2).transpose(1, 2)) + self.position[:, : height * width]
        deep = self.vit(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        x = self.neck(deep)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            x = decoder(x, skip)
        return self.head(self.last(x))


class BaselineReconstructor(nn.Module):
    """VGG11 features (no BN) and the 34 M-parameter MLP head; k = sigmoid(MLP)."""

    def __init__(self, size: int = 256) -> None:
        super().__init__()
        plan: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
        layers: list[nn.Module] = []
        channels = 1
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                assert isinstance(item, int)  # the plan above; not an input check
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        flat = 512 * (size // 32) ** 2
        self.mlp = nn.Sequential(
            nn.Linear(flat, 1024), nn.ReLU(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 1)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(self.features(image).flatten(1))).squeeze(1)


class BaselineSeparator(nn.Module):
    """Generator + reconstructor + Eq. 1 at the reference's sizes, same outputs as ours.

    The reference's reconstructor outputs the background b; k = 1 - b (same cost).
    """

    def __init__(self, n_layers: int = 2) -> None:
        super().__init__()
        self.generator = BaselineTransUNet(1 + n_layers, n_layers)
        self.reconstructor = BaselineReconstructor()

    def forward(
        self, image: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layers = torch.sigmoid(self.generator(torch.cat([image, masks], dim=1))) * masks
        k = 1 - self.reconstructor(image) * 0.95
        return layers, k, reconstruct(layers, masks, k)


class _DoubleConv(nn.Sequential):
    """Two 3x3 conv-BN-ReLU, each followed by dropout 0.5 (as the reference's U-Net)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _conv_bn_relu(in_channels, out_channels, 3),
            nn.Dropout(0.5),
            _conv_bn_relu(out_channels, out_channels, 3),
            nn.Dropout(0.5),
        )


class BaselineUNet(nn.Module):
    """The reference's supervisor U-Net: 64-128-256-512-512 down, transposed convs up."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        widths = [64, 128, 256, 512, 512]
        self.downs = nn.ModuleList(
            [_DoubleConv(in_channels, 64)]
            + [_DoubleConv(a, b) for a, b in itertools.pairwise(widths)]
        )
        # Up path: (concatenated channels, output channels) per level, deepest first.
        plan = [(1024, 256), (512, 128), (256, 64), (128, 64)]
        self.ups = nn.ModuleList([nn.ConvTranspose2d(c // 2, c // 2, 2, stride=2) for c, _ in plan])
        self.convs = nn.ModuleList([_DoubleConv(c, out) for c, out in plan])
        self.head = nn.Conv2d(64, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, down in enumerate(self.downs):
            x = down(x if index == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, conv in zip(self.ups, self.convs, strict=True):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def baseline_supervisor(n_layers: int = 2) -> nn.Module:
    """The reference's full-resolution U-Net supervisor (~15 M parameters)."""
    return BaselineUNet(n_layers, 2 * n_layers)
