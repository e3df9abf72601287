"""Eq. 1 identities, the background/transmittance conversion and the ablation switch."""

import pytest
import torch

from blsgan_core.reconstruction import (
    background_from_transmittance,
    reconstruct,
    transmittance_from_background,
)


def _two_layer_case() -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x4 strip: pixel 0 in no mask, 1 in upper only, 2 in both, 3 in lower only."""
    torch.manual_seed(0)
    layers = torch.rand(1, 2, 1, 4) * 0.8 + 0.1
    masks = torch.tensor([[[[0.0, 1, 1, 0]], [[0.0, 0, 1, 1]]]])
    return layers * masks, masks


def test_identities_for_both_one_and_no_mask() -> None:
    layers, masks = _two_layer_case()
    k = 0.7
    r = reconstruct(layers, masks, k)[0, 0, 0]
    l1, l2 = layers[0, 0, 0], layers[0, 1, 0]
    assert r[0] == 0
    assert torch.isclose(r[1], l1[1])
    assert torch.isclose(r[2], 1 - (1 - l1[2]) * (1 - l2[2]) / k)
    assert torch.isclose(r[3], l2[3])


def test_batched_k_applies_per_image() -> None:
    layers, masks = _two_layer_case()
    layers, masks = layers.repeat(3, 1, 1, 1), masks.repeat(3, 1, 1, 1)
    k = torch.tensor([0.5, 0.75, 1.0])
    r = reconstruct(layers, masks, k)
    for index in range(3):
        single = reconstruct(layers[index : index + 1], masks[index : index + 1], float(k[index]))
        assert torch.allclose(r[index], single[0])
    assert r.shape == (3, 1, 1, 4)
    assert not torch.isclose(r[0, 0, 0, 2], r[1, 0, 0, 2])


def test_no_correction_ablation_fixes_k_to_one() -> None:
    layers, masks = _two_layer_case()
    ablated = reconstruct(layers, masks, 0.5, correction=False)
    assert torch.equal(ablated, reconstruct(layers, masks, 1.0))
    l1, l2 = layers[0, 0, 0, 2], layers[0, 1, 0, 2]
    assert torch.isclose(ablated[0, 0, 0, 2], 1 - (1 - l1) * (1 - l2))


def test_published_background_convention_is_the_same_equation() -> None:
    layers, masks = _two_layer_case()
    b = 0.25
    k = transmittance_from_background(b)
    assert k == pytest.approx(0.75)
    assert background_from_transmittance(k) == pytest.approx(b)
    l1, l2 = layers[0, 0, 0, 2], layers[0, 1, 0, 2]
    published = 1 - (1 - l1) * (1 - l2) / (1 - b)
    assert torch.isclose(reconstruct(layers, masks, k)[0, 0, 0, 2], published)
    tensor_k = transmittance_from_background(torch.tensor([0.2, 0.3]))
    assert isinstance(tensor_k, torch.Tensor)
    assert torch.allclose(tensor_k, torch.tensor([0.8, 0.7]))


def test_gradients_reach_layers_and_k() -> None:
    layers, masks = _two_layer_case()
    layers.requires_grad_(True)
    k = torch.tensor([0.8], requires_grad=True)
    reconstruct(layers, masks, k).sum().backward()
    assert layers.grad is not None and layers.grad[0, :, 0, 2].abs().min() > 0
    assert k.grad is not None and k.grad.abs() > 0


def test_rejects_bad_arguments() -> None:
    layers, masks = _two_layer_case()
    with pytest.raises(ValueError, match="same shape"):
        reconstruct(layers, masks[:, :1])
    with pytest.raises(ValueError, match="> 0"):
        reconstruct(layers, masks, 0.0)
    with pytest.raises(ValueError, match="one value per image"):
        reconstruct(layers, masks, torch.tensor([0.5, 0.6]))
    with pytest.raises(TypeError, match="k must be"):
        reconstruct(layers, masks, "0.5")  # type: ignore[arg-type]
