"""Generator and backbone registry: shapes, masking, input skip, config round trip, errors."""

from typing import Any

import pytest
import torch

from blsgan_core.networks.backbones import BACKBONES, backbone_config, build_backbone
from blsgan_core.networks.generator import SKIP_EPS, Generator, GeneratorConfig
from blsgan_core.networks.transunet import TransUNet, TransUNetConfig

TINY: dict[str, dict[str, Any]] = {
    "unet": {"base_channels": 8, "depth": 2},
    "unet_small": {"depth": 2},
    "transunet": {
        "base_channels": 8,
        "depth": 2,
        "embed_dim": 16,
        "heads": 2,
        "layers": 1,
        "grid_size": 4,
    },
}


def _inputs(batch: int = 2, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    image = torch.rand(batch, 1, size, size)
    masks = torch.zeros(batch, 2, size, size)
    masks[:, 0, : size // 2 + 2] = 1
    masks[:, 1, size // 2 - 2 :] = 1
    return image, masks


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_gives_masked_layers_in_unit_range(name: str) -> None:
    generator = Generator(GeneratorConfig(backbone=name, backbone_options=TINY[name]))
    image, masks = _inputs()
    layers = generator(image, masks)
    assert layers.shape == (2, 2, 16, 16)
    assert torch.all(layers[masks == 0] == 0)
    inside = layers[masks == 1]
    assert torch.all((inside > 0) & (inside < 1))


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_input_skip_starts_at_the_identity_layers_and_can_leave_them(name: str) -> None:
    generator = Generator(
        GeneratorConfig(backbone=name, backbone_options=TINY[name], input_skip=True)
    )
    image, masks = _inputs()
    layers = generator(image, masks)
    # Equal to J * M_i up to the clamp of the logit (pixels within SKIP_EPS of 0 or 1).
    assert (layers - image * masks).abs().max() <= SKIP_EPS + 1e-6
    torch.manual_seed(2)
    target = torch.rand_like(layers) * masks
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        (generator(image, masks) - target).square().mean().backward()
        optimizer.step()
    moved = generator(image, masks)
    assert (moved - image * masks).abs().max() > 0.01
    assert torch.all(moved[masks == 0] == 0)


def test_input_skip_off_is_the_plain_generator() -> None:
    options = TINY["unet"]
    assert GeneratorConfig(backbone_options=options).input_skip is False
    torch.manual_seed(0)
    plain = Generator(GeneratorConfig(backbone_options=options))
    torch.manual_seed(0)
    skip = Generator(GeneratorConfig(backbone_options=options, input_skip=True))
    assert plain.state_dict().keys() == skip.state_dict().keys()
    image, masks = _inputs()
    # A random head does not copy the input; the skip's zero head does.
    assert (plain(image, masks) - image * masks).abs().max() > 0.1
    skip.load_state_dict(plain.state_dict())
    with torch.no_grad():
        expected = torch.sigmoid(
            plain.backbone(torch.cat([image, masks], 1)) + torch.logit(image, SKIP_EPS)
        )
        assert torch.allclose(skip(image, masks), expected * masks, atol=1e-6)


def test_registry_defaults_are_the_documented_sizes() -> None:
    def count(name: str) -> float:
        net = build_backbone(name, in_channels=3, out_channels=2)
        return sum(p.numel() for p in net.parameters()) / 1e6

    sizes = {name: count(name) for name in BACKBONES}
    assert sizes["unet_small"] < sizes["unet"] < sizes["transunet"]
    assert 4 < sizes["unet"] < 5


def test_config_round_trip_spells_out_options() -> None:
    config = GeneratorConfig(backbone="unet", backbone_options={"depth": 3})
    data = config.to_dict()
    assert data["backbone_options"]["base_channels"] == BACKBONES["unet"].defaults["base_channels"]
    assert data["backbone_options"]["depth"] == 3
    assert data["input_skip"] is False
    rebuilt = GeneratorConfig(**data)
    assert rebuilt.to_dict() == data
    skip = GeneratorConfig(**{**data, "input_skip": True})
    assert GeneratorConfig(**skip.to_dict()) == skip and skip.input_skip is True
    torch.manual_seed(0)
    first = Generator(config)
    torch.manual_seed(0)
    second = Generator(rebuilt)
    image, masks = _inputs()
    assert torch.equal(first(image, masks), second(image, masks))


def test_transunet_resizes_its_position_grid() -> None:
    config = TransUNetConfig(**TINY["transunet"], in_channels=3, out_channels=2)
    net = TransUNet(config)
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    assert net(torch.rand(1, 3, 16, 24)).shape == (1, 2, 16, 24)


def test_gradients_reach_every_generator_parameter() -> None:
    generator = Generator(GeneratorConfig(backbone="transunet", backbone_options=TINY["transunet"]))
    image, masks = _inputs()
    generator(image, masks).square().mean().backward()
    missing = [n for n, p in generator.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_rejects_bad_configs_and_inputs() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        GeneratorConfig(backbone="resnet")
    with pytest.raises(ValueError, match=r"no option\(s\) \['width'\]"):
        GeneratorConfig(backbone_options={"width": 3})
    with pytest.raises(ValueError, match="n_layers"):
        GeneratorConfig(n_layers=0)
    with pytest.raises(TypeError, match="input_skip must be a bool, got 'yes'"):
        GeneratorConfig(input_skip="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of heads"):
        backbone_config("transunet", in_channels=3, out_channels=2, options={"embed_dim": 10})
    generator = Generator(GeneratorConfig(backbone_options=TINY["unet"]))
    image, masks = _inputs()
    with pytest.raises(ValueError, match="masks must be"):
        generator(image, masks[:, :1])
    with pytest.raises(ValueError, match="image must be"):
        generator(image.repeat(1, 2, 1, 1), masks)
