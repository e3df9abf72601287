"""Registry of image-to-image backbones, chosen by name in a network's config.

A checkpoint stores ``backbone`` (a registry name) and ``backbone_options`` (overrides of
that entry's defaults); :func:`build_backbone` rebuilds the same network from them. Entries:

``unet`` (default)
    U-Net, 12 base channels (GroupNorm in groups of 4), 5 poolings (~4.4 M parameters).
    Chosen for CPU speed: a U-Net's time is dominated by its full-resolution
    convolutions, which are memory-bound at these widths, so the base width sets the
    speed, while a fifth pooling adds receptive field for inpainting the overlap at little
    cost. 12 base channels measured ~6x faster than the reference at batch 5 on 2 cores,
    16 base channels only ~4.3x (median of interleaved runs; docs/science.md). The
    reference's own TransUNet works at 16 channels at full resolution too.
``unet_small``
    The same U-Net at 8 base channels (~2 M parameters): the lighter option.
``transunet``
    U-Net with a transformer bottleneck (TransUNet-style, ~20 M parameters): the heavier
    option, closest to the reference implementation's generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any

from torch import nn

from blsgan_core.networks.transunet import TransUNet, TransUNetConfig
from blsgan_core.networks.unet import UNet, UNetConfig


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one registered backbone: its config type, network and defaults."""

    config_type: type[UNetConfig]
    network: Callable[[Any], nn.Module]
    defaults: Mapping[str, Any]
    description: str


BACKBONES: Mapping[str, BackboneSpec] = MappingProxyType(
    {
        "unet": BackboneSpec(
            UNetConfig,
            UNet,
            MappingProxyType({"base_channels": 12, "depth": 5, "groups": 4}),
            "U-Net, 12 base channels, depth 5 (default)",
        ),
        "unet_small": BackboneSpec(
            UNetConfig,
            UNet,
            MappingProxyType({"base_channels": 8, "depth": 5}),
            "U-Net, 8 base channels, depth 5 (lighter)",
        ),
        "transunet": BackboneSpec(
            TransUNetConfig,
            TransUNet,
            MappingProxyType({"base_channels": 32, "depth": 4, "max_channels": 256}),
            "U-Net with a transformer bottleneck (heavier, TransUNet-style)",
        ),
    }
)


def backbone_config(
    name: str, *, in_channels: int, out_channels: int, options: Mapping[str, Any] | None = None
) -> UNetConfig:
    """The frozen config of backbone ``name``: registry defaults, then ``options``."""
    spec = BACKBONES.get(name)
    if spec is None:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    options = dict(options or {})
    known = {item.name for item in fields(spec.config_type)} - {"in_channels", "out_channels"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"backbone {name!r} has no option(s) {unknown}; known: {sorted(known)}")
    values = {**spec.defaults, **options, "in_channels": in_channels, "out_channels": out_channels}
    return spec.config_type(**values)


def build_backbone(
    name: str, *, in_channels: int, out_channels: int, options: Mapping[str, Any] | None = None
) -> nn.Module:
    """A freshly initialised backbone ``name``: ``in_channels`` in, ``out_channels`` logits out."""
    config = backbone_config(
        name, in_channels=in_channels, out_channels=out_channels, options=options
    )
    return BACKBONES[name].network(config)


def resolved_options(
    name: str, *, in_channels: int, out_channels: int, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every option of backbone ``name`` (defaults filled in) except the channel counts.

    Networks store this in their checkpoint config, so that a later change of a registry
    default cannot change how an old checkpoint is rebuilt; it also validates ``options``.
    """
    values = asdict(
        backbone_config(name, in_channels=in_channels, out_channels=out_channels, options=options)
    )
    values.pop("in_channels")
    values.pop("out_channels")
    return values
