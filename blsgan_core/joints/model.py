"""The localiser: hand detector, landmark network and joint refiner, three small U-Nets.

Stage 1, the detector, sees the whole radiograph at low resolution (long side
``detector_size``) and predicts two maps: a Gaussian at each hand's centre (the middle
of its metacarpus) and the hand's region. Stage 2, the landmark network, sees one hand
at a time, cut out square around the detected region and resized to ``landmark_size``,
and predicts one Gaussian per MCP point and per axis point (thumb IP, PIP of fingers
2-5). It knows left hands only (PA view, thumb on the image's right): each box is shown
to it as is and mirrored and the plausible, more confident answer is kept, so right
hands are found as mirrored left hands. Stage 3, the refiner, sees a small patch around
each MCP point found by stage 2, turned finger-up and scaled by the hand's size, and
predicts the point again at a resolution the whole-hand view cannot give. All are
trained with sigmoid outputs against Gaussian targets, so peak values are confidences
in [0, 1].
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

KIND = "localiser"
WEIGHTS_FILE = "localiser.pt"
# Channels of the detector's output.
CENTRE_CHANNEL, REGION_CHANNEL = 0, 1
# The landmark network's output: 5 MCP points, then 5 axis points, thumb to little.
N_LANDMARK_CHANNELS = 10
STAGES = ("detector", "landmarks", "refiner")


def _default_detector() -> UNetConfig:
    return UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=4, max_channels=128)


def _default_landmarks() -> UNetConfig:
    # 16 full-resolution channels, not 8: with 8 features feeding 10 output maps the
    # network learned "some landmark here" in every map and no finger identities.
    return UNetConfig(
        in_channels=1, out_channels=N_LANDMARK_CHANNELS, base_channels=16, depth=4, max_channels=128
    )


def _default_refiner() -> UNetConfig:
    return UNetConfig(in_channels=1, out_channels=1, base_channels=8, depth=3, max_channels=64)


@dataclass(frozen=True)
class LocaliserConfig:
    """Architecture and the fixed geometry the stages were trained with.

    Attributes
    ----------
    detector, landmarks, refiner
        U-Net shapes of the three stages.
    detector_size, landmark_size, patch_size
        Square input sizes of the stages in pixels.
    hand_box_scale
        The landmark stage's input square is this multiple of the longer side of the
        hand region's bounding box.
    patch_scale
        The refiner's patch spans this multiple of the MCP2-MCP3 distance.
    centre_sigma, landmark_sigma, patch_sigma
        Gaussian widths of the training targets, in the stages' pixels.
    region_margin
        The hand region target is the landmarks' convex hull grown by this multiple of
        the MCP2-MCP3 distance (soft tissue beyond the outermost landmarks).
    """

    detector: UNetConfig = field(default_factory=_default_detector)
    landmarks: UNetConfig = field(default_factory=_default_landmarks)
    refiner: UNetConfig = field(default_factory=_default_refiner)
    detector_size: int = 128
    landmark_size: int = 128
    patch_size: int = 64
    hand_box_scale: float = 1.1
    patch_scale: float = 0.8
    centre_sigma: float = 3.0
    landmark_sigma: float = 1.5
    patch_sigma: float = 2.0
    region_margin: float = 0.3

    def __post_init__(self) -> None:
        outputs = {"detector": 2, "landmarks": N_LANDMARK_CHANNELS, "refiner": 1}
        sizes = {
            "detector": self.detector_size,
            "landmarks": self.landmark_size,
            "refiner": self.patch_size,
        }
        for stage in STAGES:
            net: UNetConfig = getattr(self, stage)
            if net.in_channels != 1 or net.out_channels != outputs[stage]:
                raise ValueError(
                    f"the {stage} needs 1 input and {outputs[stage]} output channels: {net}"
                )
            if sizes[stage] % net.size_multiple:
                raise ValueError(
                    f"{stage} input size {sizes[stage]} is not a multiple of {net.size_multiple}"
                )
        if not self.hand_box_scale >= 1.0:
            raise ValueError(f"hand_box_scale must be >= 1, got {self.hand_box_scale}")
        if not self.patch_scale > 0:
            raise ValueError(f"patch_scale must be positive, got {self.patch_scale}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocaliserConfig:
        """Inverse of ``to_dict``."""
        values = dict(data)
        for stage in STAGES:
            values[stage] = UNetConfig(**values[stage])
        return cls(**values)


class Localiser(nn.Module):
    """The three networks of the localiser, built from one config."""

    def __init__(self, config: LocaliserConfig) -> None:
        super().__init__()
        self.config = config
        self.detector = UNet(config.detector)
        self.landmarks = UNet(config.landmarks)
        self.refiner = UNet(config.refiner)
        self.version = "untrained"
        self.metadata: dict[str, Any] = {}

    def to_checkpoint(self, version: str, metadata: dict[str, Any]) -> Checkpoint:
        """The checkpoint holding all networks and the config."""
        return Checkpoint(
            kind=KIND,
            version=version,
            config=self.config.to_dict(),
            state={stage: getattr(self, stage).state_dict() for stage in STAGES},
            metadata=metadata,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Localiser:
        """Rebuild from a checkpoint alone, in eval mode, float32."""
        if checkpoint.kind != KIND:
            raise ValueError(f"checkpoint holds a {checkpoint.kind!r} model, not {KIND!r}")
        model = cls(LocaliserConfig.from_dict(checkpoint.config))
        for stage in STAGES:
            getattr(model, stage).load_state_dict(checkpoint.state[stage])
        model.version = checkpoint.version
        model.metadata = checkpoint.metadata
        return model.float().eval()


def load_localiser(path: Path | None = None) -> Localiser:
    """The localiser from ``path``, or the weights shipped with the package."""
    checkpoint = load_checkpoint(path or shipped_weights(WEIGHTS_FILE), expected_kind=KIND)
    return Localiser.from_checkpoint(checkpoint)


def save_localiser(
    path: Path, model: Localiser, version: str, metadata: dict[str, Any], *, half: bool = False
) -> None:
    """Write the localiser as a checkpoint (``half`` for the shipped fp16 weights)."""
    save_checkpoint(path, model.to_checkpoint(version, metadata), half=half)


def heatmaps(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Sigmoid maps of a stage for a batch ``(N, 1, S, S)``, without gradients."""
    with torch.inference_mode():
        return torch.sigmoid(network(images))
