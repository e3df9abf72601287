"""U-Net shapes, config validation and gradient flow on small tensors."""

import pytest
import torch

from blsgan_core.networks.unet import UNet, UNetConfig


@pytest.mark.parametrize(("depth", "size"), [(1, 8), (3, 32), (4, 64)])
def test_output_shape_matches_input(depth: int, size: int) -> None:
    net = UNet(UNetConfig(in_channels=3, out_channels=4, base_channels=8, depth=depth))
    out = net(torch.rand(2, 3, size, size + 16))
    assert out.shape == (2, 4, size, size + 16)


def test_gradients_reach_every_parameter() -> None:
    net = UNet(UNetConfig(in_channels=1, out_channels=2, base_channels=8, depth=2))
    net(torch.rand(1, 1, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_rejects_bad_config_and_sizes() -> None:
    with pytest.raises(ValueError, match="depth"):
        UNetConfig(depth=0)
    with pytest.raises(ValueError, match="groups"):
        UNetConfig(base_channels=12, groups=8)
    net = UNet(UNetConfig(base_channels=8, depth=2))
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.rand(1, 1, 10, 12))
