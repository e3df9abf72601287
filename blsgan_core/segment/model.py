"""The bone segmenter: a U-Net giving upper and lower bone masks of a joint crop.

Two sigmoid channels, not a softmax over classes: the proximal phalanx base (upper) and
the metacarpal head (lower) overlap in the projection, and that overlap is exactly what
BLS-GAN separates. The network runs at ``input_size`` (128 by default) and its logits
are resized to the crop's 256 pixels: bone outlines are smooth, and a 128-pixel round
trip of the annotated masks keeps a Dice of 0.999, while training costs a quarter.

The overlap is not smooth at that scale: most real overlaps are slivers one to four
crop pixels wide, half a pixel to two pixels at 128. With ``refine_channels`` > 0 a few
convolutions at the crop's full resolution (:class:`FullResolutionRefiner`) see the
crop and the resized logits and correct the logits near the bone edges, where the
hidden edge shows as a one-pixel step of brightness.

``head = "regions"`` (not the shipped model's) predicts the overlap itself: a softmax
over four regions (background, upper bone only, lower bone only, both), each amodal mask
the sum of its two regions. With two sigmoids the overlap is only the product of two
edge predictions, and a one-pixel sliver between two such edges is what the shipped
model gets twice too thick (docs/frontend.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from blsgan_core.networks.unet import UNet, UNetConfig
from blsgan_core.shipped import shipped_weights

KIND = "segmenter"
WEIGHTS_FILE = "segmenter.pt"
UPPER, LOWER = 0, 1
CHANNEL_NAMES = ("upper", "lower")
HEADS = ("sigmoid", "regions")
# head "regions": background, upper bone only, lower bone only, both (the overlap)
REGION_NAMES = ("background", "upper only", "lower only", "overlap")


def head_channels(head: str) -> int:
    """Logit channels of a head: two sigmoids, or the four regions' softmax."""
    return len(CHANNEL_NAMES) if head == "sigmoid" else len(REGION_NAMES)


def default_unet() -> UNetConfig:
    """The shipped segmenter's U-Net shape (four poolings, 16 channels at full size)."""
    return UNetConfig(in_channels=1, out_channels=2, base_channels=16, depth=4, max_channels=256)


@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture: the U-Net, the size it runs at, the crop size it serves, its head."""

    unet: UNetConfig = field(default_factory=default_unet)
    input_size: int = 128
    crop_size: int = 256
    refine_channels: int = 0
    head: str = "sigmoid"

    @property
    def outputs(self) -> int:
        """Logit channels of its head."""
        return head_channels(self.head)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.unet.in_channels != 1 or self.unet.out_channels != self.outputs:
            raise ValueError(
                f"the {self.head} head needs 1 input and {self.outputs} output channels: "
                f"{self.unet}"
            )
        if self.input_size % self.unet.size_multiple:
            raise ValueError(
                f"input_size={self.input_size} is not a multiple of {self.unet.size_multiple}"
            )
        if self.crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {self.crop_size}")
        if self.refine_channels < 0:
            raise ValueError(f"refine_channels must be >= 0, got {self.refine_channels}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterConfig:
        """Inverse of ``to_dict``."""
        return cls(**{**data, "unet": UNetConfig(**data["unet"])})


class FullResolutionRefiner(nn.Module):
    """Logits + a residual from three 3x3 convolutions over (crop, logits) at full size.

    The middle convolution is dilated (2), so each pixel sees 9 x 9 crop pixels: enough
    to place an edge one or two pixels off where the coarse logits put it. The last
    convolution starts at zero, so a refiner added to a trained U-Net changes nothing
    until it is trained.
    """

    def __init__(self, channels: int, classes: int = len(CHANNEL_NAMES)) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1 + classes, channels, 3, padding=1),
            nn.SiLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2),
            nn.SiLU(inplace=True),
        )
        self.head = nn.Conv2d(channels, classes, 3, padding=1, bias=False)
        nn.init.zeros_(self.head.weight)

    def forward(self, crops: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.head(self.features(torch.cat([crops, logits], dim=1)))


class Segmenter(nn.Module):
    """Crops ``(N, 1, S, S)`` in [0, 1] -> logits ``(N, C, S, S)`` of its head: upper and
    lower (sigmoid), or the four regions (softmax)."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(config.unet)
        self.refiner = (
            FullResolutionRefiner(config.refine_channels, config.outputs)
            if config.refine_channels
            else None
        )
        self.version = "untrained"
        self.metadata: dict[str, Any] = {}

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        size = crops.shape[-2:]
        inner = (self.config.input_size, self.config.input_size)
        x = crops if size == inner else nn.functional.interpolate(crops, inner, mode="area")
        logits = self.unet(x)
        if size != inner:
            logits = nn.functional.interpolate(logits, size, mode="bilinear", align_corners=False)
        return logits if self.refiner is None else self.refiner(crops, logits)

    def probabilities(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From ``logits``: each amodal bone mask's probability ``(N, 2, S, S)`` and the
        overlap's ``(N, S, S)`` (the product of the two sigmoids, or its own region)."""
        if self.config.head == "sigmoid":
            bones = torch.sigmoid(logits)
            return bones, bones[:, UPPER] * bones[:, LOWER]
        regions = torch.softmax(logits, dim=1)
        overlap = regions[:, 3]
        return torch.stack((regions[:, 1] + overlap, regions[:, 2] + overlap), 1), overlap

    def to_checkpoint(self, version: str, metadata: dict[str, Any]) -> Checkpoint:
        """The checkpoint of this network with its config."""
        state = {"unet": self.unet.state_dict()}
        if self.refiner is not None:
            state["refiner"] = self.refiner.state_dict()
        return Checkpoint(KIND, version, self.config.to_dict(), state, metadata)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Segmenter:
        """Rebuild from a checkpoint alone, in eval mode, float32."""
        if checkpoint.kind != KIND:
            raise ValueError(f"checkpoint holds a {checkpoint.kind!r} model, not {KIND!r}")
        model = cls(SegmenterConfig.from_dict(checkpoint.config))
        model.unet.load_state_dict(checkpoint.state["unet"])
        if model.refiner is not None:
            model.refiner.load_state_dict(checkpoint.state["refiner"])
        model.version = checkpoint.version
        model.metadata = checkpoint.metadata
        return model.float().eval()


def load_segmenter(path: Path | None = None) -> Segmenter:
    """The segmenter from ``path``, or the weights shipped with the package."""
    checkpoint = load_checkpoint(path or shipped_weights(WEIGHTS_FILE), expected_kind=KIND)
    return Segmenter.from_checkpoint(checkpoint)


def save_segmenter(
    path: Path, model: Segmenter, version: str, metadata: dict[str, Any], *, half: bool = False
) -> None:
    """Write the segmenter as a checkpoint (``half`` for the shipped fp16 weights)."""
    save_checkpoint(path, model.to_checkpoint(version, metadata), half=half)
