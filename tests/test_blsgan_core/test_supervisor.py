"""Supervisor: 2n output channels at input resolution, reduced-resolution option, errors."""

import pytest
import torch

from blsgan_core.networks.supervisor import Supervisor, SupervisorConfig

TINY = {"base_channels": 8, "depth": 2}


@pytest.mark.parametrize(("n_layers", "scale"), [(2, 1), (2, 2), (3, 4)])
def test_outputs_two_channels_per_layer_at_input_size(n_layers: int, scale: int) -> None:
    supervisor = Supervisor(SupervisorConfig(n_layers=n_layers, backbone_options=TINY, scale=scale))
    logits = supervisor(torch.rand(2, n_layers, 32, 48))
    assert logits.shape == (2, 2 * n_layers, 32, 48)


def test_reduced_resolution_sees_a_pooled_input() -> None:
    torch.manual_seed(0)
    full = Supervisor(SupervisorConfig(backbone_options=TINY, scale=1))
    half = Supervisor(SupervisorConfig(backbone_options=TINY, scale=2))
    half.load_state_dict(full.state_dict())
    layers = torch.rand(1, 2, 32, 32)
    pooled = torch.nn.functional.avg_pool2d(layers, 2)
    expected = torch.nn.functional.interpolate(
        full(pooled), size=(32, 32), mode="bilinear", align_corners=False
    )
    assert torch.allclose(half(layers), expected)


def test_config_round_trip_and_gradients() -> None:
    config = SupervisorConfig(backbone_options=TINY)
    assert SupervisorConfig(**config.to_dict()).to_dict() == config.to_dict()
    supervisor = Supervisor(config)
    supervisor(torch.rand(1, 2, 16, 16)).mean().backward()
    assert all(p.grad is not None for p in supervisor.parameters())


def test_rejects_bad_config_and_input() -> None:
    with pytest.raises(ValueError, match="scale"):
        SupervisorConfig(scale=0)
    with pytest.raises(ValueError, match="unknown backbone"):
        SupervisorConfig(backbone="vgg")
    supervisor = Supervisor(SupervisorConfig(backbone_options=TINY, scale=2))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        supervisor(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="multiple of scale"):
        supervisor(torch.rand(1, 2, 15, 16))
