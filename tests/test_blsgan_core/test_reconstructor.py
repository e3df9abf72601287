"""Reconstructor network: one k per image in (k_min, 1), starting near k_init."""

import json

import pytest
import torch

from blsgan_core.networks.reconstructor import Reconstructor, ReconstructorConfig

TINY = ReconstructorConfig(channels=(8, 8, 16), convs_per_stage=(1, 1, 1))


def test_one_k_per_image_starting_near_k_init() -> None:
    torch.manual_seed(0)
    k = Reconstructor(TINY)(torch.rand(3, 1, 32, 32))
    assert k.shape == (3,)
    assert torch.allclose(k, torch.full((3,), TINY.k_init), atol=0.01)


def test_k_stays_inside_its_open_range_for_extreme_logits() -> None:
    net = Reconstructor(TINY)
    with torch.no_grad():
        net.head.bias.fill_(-1e4)
    low = net(torch.rand(1, 1, 16, 16))
    with torch.no_grad():
        net.head.bias.fill_(1e4)
    high = net(torch.rand(1, 1, 16, 16))
    assert low.item() == pytest.approx(TINY.k_min)
    assert high.item() == pytest.approx(1.0)
    assert low.item() > 0


def test_gradients_reach_every_parameter_and_sizes_are_free() -> None:
    net = Reconstructor(TINY)
    net(torch.rand(2, 1, 24, 40)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_default_is_small_and_config_survives_json() -> None:
    config = ReconstructorConfig()
    net = Reconstructor(config)
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    data = json.loads(json.dumps(config.to_dict()))
    assert ReconstructorConfig(**data) == config


def test_rejects_bad_configs_and_inputs() -> None:
    with pytest.raises(ValueError, match="equal length"):
        ReconstructorConfig(channels=(8, 16), convs_per_stage=(1,))
    with pytest.raises(ValueError, match="k_min"):
        ReconstructorConfig(k_min=0.0)
    with pytest.raises(ValueError, match="k_init"):
        ReconstructorConfig(k_init=1.0)
    with pytest.raises(ValueError, match="groups"):
        ReconstructorConfig(channels=(12,), convs_per_stage=(1,))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        Reconstructor(TINY)(torch.rand(1, 2, 16, 16))
