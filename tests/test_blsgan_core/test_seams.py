"""The Poisson boundary blend of generated layers (blsgan_core/seams.py): hand-made cases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from blsgan_core.inference import separate
from blsgan_core.laplace import poisson_fill
from blsgan_core.model import BLSGANConfig, BLSGANModel, load_model, model_checkpoint, save_model
from blsgan_core.reconstruction import reconstruct
from blsgan_core.seams import (
    blend_batch,
    blend_layer,
    blend_layers,
    exchange_by,
    exchange_layers,
    project_layers,
    remove_seams,
)

HEIGHT, WIDTH = 32, 24
#: The soft tissue's transmittance in the Eq. 1 cases.
EQ1_K = 0.9


def _masks() -> np.ndarray:
    """Upper bone rows 0-19, lower bone rows 12-31: the overlap is rows 12-19."""
    masks = np.zeros((2, HEIGHT, WIDTH), dtype=bool)
    masks[0, :20] = True
    masks[1, 12:] = True
    return masks


def _ramp() -> np.ndarray:
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    return 0.3 + 0.01 * rows + 0.005 * cols


def test_a_constant_offset_inside_the_overlap_is_removed() -> None:
    masks = _masks()
    overlap = masks.sum(axis=0) >= 2
    truth = _ramp()
    for index in range(2):  # the upper layer meets its rest above, the lower one below
        generated = np.where(overlap, truth + 0.1, truth) * masks[index]
        blended = blend_layer(generated, truth, masks[index], overlap)
        assert np.abs(generated - truth)[overlap].min() == pytest.approx(0.1)
        assert np.abs(blended - truth)[masks[index]].max() < 1e-3
        assert np.all(blended[~masks[index]] == 0)


def test_a_layer_without_a_seam_stays_as_it_is() -> None:
    masks = _masks()
    overlap = masks.sum(axis=0) >= 2
    noise = np.random.default_rng(0).normal(size=(HEIGHT, WIDTH))
    texture = _ramp() + 0.3 * ndimage.gaussian_filter(noise, 3)
    layers = texture * masks
    blended = blend_layers(layers, texture, masks)
    change = np.abs(blended - layers)
    assert change[~overlap[None] & masks].max() < 1e-6  # the input outside the overlap
    assert change[:, overlap].mean() < 2e-3
    assert change.max() < 1e-2


def test_a_part_without_a_dirichlet_neighbour_keeps_its_layer() -> None:
    # The upper bone lies inside the lower one: its whole overlap is bounded by its own
    # outline (no Dirichlet value), so only the screening fixes the level there.
    masks = np.zeros((2, HEIGHT, WIDTH), dtype=bool)
    masks[0, 8:16, 6:14] = True
    masks[1, 4:28, 2:20] = True
    overlap = masks.sum(axis=0) >= 2
    layer = np.where(masks[0], _ramp() + 0.2, 0.0)
    blended = blend_layer(layer, _ramp(), masks[0], overlap)
    assert np.all(np.isfinite(blended))
    assert np.abs(blended - layer).max() < 1e-5
    with pytest.raises(ValueError, match="no unique solution"):
        poisson_fill(layer, overlap, guidance=layer, dirichlet=masks[0] & ~overlap)


def test_blend_batch_checks_shapes_and_passes_an_empty_overlap_through() -> None:
    masks = _masks()
    masks[1, :20] = False  # apart: nothing to blend
    image = _ramp()
    layers = torch.from_numpy(image * masks).float()[None]
    blended = blend_batch(
        layers, torch.from_numpy(image).float()[None, None], torch.from_numpy(masks)[None]
    )
    assert torch.allclose(blended, layers)
    with pytest.raises(ValueError, match="layers and masks"):
        blend_layers(np.zeros((2, 4, 4)), np.zeros((4, 4)), np.zeros((2, 4, 5), dtype=bool))


def _identity_model(config: BLSGANConfig, blend: str) -> BLSGANModel:
    """A fresh input-skip generator returns the identity layers ``J * M_i``."""
    generator = replace(config.generator, input_skip=True)
    return BLSGANModel(replace(config, generator=generator, boundary_blend=blend))


def _double_bone() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A joint whose overlap is 0.2 brighter than either bone: identity layers have a seam."""
    masks = _masks()
    truth = _ramp()
    image = np.where(masks.sum(axis=0) >= 2, truth + 0.2, truth).astype(np.float32)
    return image, masks, truth


def test_the_models_switch_is_followed_and_survives_its_checkpoint(
    tiny_config: BLSGANConfig, tmp_path: Path
) -> None:
    image, masks, truth = _double_bone()
    overlap = masks.sum(axis=0) >= 2
    save_model(tmp_path / "blend.pt", _identity_model(tiny_config, "poisson"), "1", half=True)
    model = load_model(tmp_path / "blend.pt")
    assert model.config.boundary_blend == "poisson"
    blended = separate(image[None], masks[None], model)
    plain = separate(image[None], masks[None], model, boundary_blend="off")
    for index in range(2):
        assert np.abs(plain.layers[0, index].numpy() - truth)[overlap].mean() > 0.19
        assert np.abs(blended.layers[0, index].numpy() - truth)[overlap].max() < 5e-3
    expected = reconstruct(blended.layers, torch.from_numpy(masks)[None].float(), blended.k)
    assert torch.allclose(blended.reconstruction, expected)
    off = _identity_model(tiny_config, "off")
    assert torch.allclose(separate(image[None], masks[None], off).layers, plain.layers, atol=1e-6)


def test_old_checkpoints_load_with_their_blend(tiny_config: BLSGANConfig) -> None:
    old = model_checkpoint(BLSGANModel(tiny_config), "0")
    del old.config["boundary_blend"]
    assert BLSGANConfig.from_dict(old.config).boundary_blend == "off"
    for switch, mode in ((True, "poisson"), (False, "off")):  # before the exchange existed
        assert (
            BLSGANConfig.from_dict({**old.config, "boundary_blend": switch}).boundary_blend == mode
        )
    exchange = replace(tiny_config, boundary_blend="exchange")
    assert BLSGANConfig.from_dict(exchange.to_dict()) == exchange
    with pytest.raises(ValueError, match="boundary_blend must be one of"):
        replace(tiny_config, boundary_blend="on")


def test_a_model_set_to_exchange_keeps_its_reconstruction(tiny_config: BLSGANConfig) -> None:
    image, masks, _ = _double_bone()
    overlap = masks.sum(axis=0) >= 2
    model = _identity_model(tiny_config, "exchange")
    exchanged = separate(image[None], masks[None], model)
    plain = separate(image[None], masks[None], model, boundary_blend="off")
    assert torch.allclose(exchanged.reconstruction, plain.reconstruction, atol=1e-5)
    assert not torch.allclose(exchanged.layers[0, :, overlap], plain.layers[0, :, overlap])


def test_exchange_removes_complementary_seams_and_keeps_the_reconstruction() -> None:
    masks = _masks()
    overlap = masks[0] & masks[1]
    truth = np.stack([np.where(masks[0], 0.5, 0.0), np.where(masks[1], 0.4, 0.0)])
    layers = truth.copy()
    # The upper layer 20 % more opaque inside the overlap, the lower one as much less:
    # Eq. 1's product (1 - L1)(1 - L2) is the true one, the seams are not.
    layers[0][overlap] = 1 - 0.5 * np.exp(-0.2)
    layers[1][overlap] = 1 - 0.6 * np.exp(0.2)
    exchanged = exchange_layers(layers, masks)
    np.testing.assert_allclose(exchanged, truth, atol=2e-4)
    product = (1 - exchanged[0]) * (1 - exchanged[1])
    np.testing.assert_allclose(product, (1 - layers[0]) * (1 - layers[1]), atol=1e-6)


def test_exchange_meets_conflicting_seams_halfway_and_leaves_other_pixels() -> None:
    masks = _masks()
    overlap = masks[0] & masks[1]
    truth = np.stack([np.where(masks[0], 0.5, 0.0), np.where(masks[1], 0.4, 0.0)])
    layers = truth.copy()
    layers[0][overlap] = 1 - 0.5 * np.exp(-0.2)  # only the upper layer is off
    exchanged = exchange_layers(layers, masks)
    np.testing.assert_allclose(exchanged[:, ~overlap], layers[:, ~overlap], atol=1e-7)
    upper = np.log(1 - exchanged[0][overlap]) - np.log(0.5)
    lower = np.log(1 - exchanged[1][overlap]) - np.log(0.6)
    # Each bone's edge asks for its own offset; d is the smoothest compromise, so the
    # upper layer keeps part of its offset and the lower one takes the rest.
    assert -0.2 < upper.mean() < -0.05 and -0.15 < lower.mean() < 0
    np.testing.assert_allclose(upper + lower, -0.2, atol=1e-6)


def test_exchange_without_an_overlap_is_the_identity() -> None:
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, :3], masks[1, 5:] = True, True
    layers = np.random.default_rng(0).random((2, 8, 8)) * masks
    np.testing.assert_array_equal(exchange_layers(layers, masks), layers.astype(np.float32))


def _composed(truth: np.ndarray, masks: np.ndarray, k: float) -> np.ndarray:
    """The input Eq. 1 composes from ``truth``."""
    layers = torch.from_numpy(truth)[None].float()
    return reconstruct(layers, torch.from_numpy(masks)[None].float(), k)[0, 0].double().numpy()


def test_projection_removes_what_eq1_sees_and_only_inside_the_overlap() -> None:
    masks = _masks()
    overlap = masks[0] & masks[1]
    rng = np.random.default_rng(1)
    truth = np.stack(
        [0.4 + 0.1 * rng.random((HEIGHT, WIDTH)), 0.3 + 0.1 * rng.random((HEIGHT, WIDTH))]
    )
    truth = truth * masks
    image, k = _composed(truth, masks, 0.8), 0.8
    # Both layers' log(1 - L) off by the same field inside the overlap (a wrong total),
    # and the upper layer off by a little outside it too.
    common = 0.1 * rng.standard_normal((HEIGHT, WIDTH))
    layers = 1 - (1 - truth) * np.exp(np.where(overlap, common, 0.0))
    layers[0][~overlap & masks[0]] += 0.01
    projected = project_layers(layers, image, masks, k)
    np.testing.assert_allclose(projected[:, overlap], truth[:, overlap], atol=1e-5)
    np.testing.assert_array_equal(projected[:, ~overlap], layers[:, ~overlap].astype(np.float32))
    untouched = project_layers(truth, image, masks, k)
    np.testing.assert_allclose(untouched, truth, atol=1e-6)
    with pytest.raises(ValueError, match="must be > 0"):
        project_layers(truth, image, masks, 0.0)


def _wrong_split_and_total() -> tuple[np.ndarray, ...]:
    """Two flat bones composed with k 0.9, and layers whose log(1 - L) inside the overlap is
    0.2 too low (upper) and 0.1 too high (lower): the split off by 0.15 each way, the total
    by 0.05 in each layer. Returns masks, overlap, truth, image, layers."""
    masks = _masks()
    overlap = masks[0] & masks[1]
    truth = np.stack([np.where(masks[0], 0.5, 0.0), np.where(masks[1], 0.4, 0.0)])
    image = _composed(truth, masks, EQ1_K)
    layers = truth.copy()
    layers[0][overlap] = 1 - 0.5 * np.exp(-0.2)
    layers[1][overlap] = 1 - 0.6 * np.exp(0.1)
    return masks, overlap, truth, image, layers


def test_eq1_exchange_removes_a_wrong_total_and_a_wrong_split(tiny_config: BLSGANConfig) -> None:
    masks, overlap, truth, image, layers = _wrong_split_and_total()
    # Neither step alone recovers the truth.
    projected = project_layers(layers, image, masks, EQ1_K)
    np.testing.assert_allclose(exchange_layers(projected, masks), truth, atol=2e-4)
    assert np.abs(exchange_layers(layers, masks) - truth)[:, overlap].max() > 0.01
    assert np.abs(projected - truth)[:, overlap].max() > 0.05
    model = _identity_model(tiny_config, "eq1-exchange")
    result = separate(image[None].astype(np.float32), masks[None], model)
    recon = result.reconstruction[0, 0].numpy()
    np.testing.assert_allclose(recon[overlap], image[overlap], atol=1e-4)


def test_eq1_split_removes_the_wrong_split_and_keeps_the_generators_reconstruction(
    tiny_config: BLSGANConfig,
) -> None:
    masks, overlap, truth, image, layers = _wrong_split_and_total()
    # The field found on the projected layers removes the split; the total stays.
    split = exchange_layers(layers, masks, guide=project_layers(layers, image, masks, EQ1_K))
    offsets = np.log(1 - split[:, overlap]) - np.log(1 - truth[:, overlap])
    np.testing.assert_allclose(offsets, -0.05, atol=2e-3)
    product = (1 - split[0]) * (1 - split[1])
    np.testing.assert_allclose(product, (1 - layers[0]) * (1 - layers[1]), atol=1e-6)
    for mode in ("eq1-split", "eq1-offset"):
        model = _identity_model(tiny_config, mode)
        result = separate(image[None].astype(np.float32), masks[None], model)
        plain = separate(image[None].astype(np.float32), masks[None], model, boundary_blend="off")
        assert torch.allclose(result.reconstruction, plain.reconstruction, atol=1e-5)


def test_eq1_offset_moves_one_constant_between_the_layers() -> None:
    masks, overlap, truth, image, _ = _wrong_split_and_total()
    rng = np.random.default_rng(2)
    # A split that varies across the overlap: the constant step applies its mean only.
    field = np.where(overlap, 0.1 + 0.1 * rng.standard_normal(overlap.shape), 0.0)
    layers = np.stack([1 - (1 - truth[0]) * np.exp(-field), 1 - (1 - truth[1]) * np.exp(field)])
    guide = project_layers(layers, image, masks, EQ1_K)
    varied = exchange_layers(layers, masks, guide=guide)
    shifted = exchange_layers(layers, masks, guide=guide, constant=True)
    moved = np.log(1 - shifted[0]) - np.log(1 - layers[0])
    assert np.ptp(moved[overlap]) < 1e-6 and 0.05 < moved[overlap].mean() < 0.15
    assert np.ptp((np.log(1 - varied[0]) - np.log(1 - layers[0]))[overlap]) > 0.01
    np.testing.assert_array_equal(shifted[:, ~overlap], layers[:, ~overlap].astype(np.float32))


def test_the_offset_calibration_adds_to_the_steps_constant(tiny_config: BLSGANConfig) -> None:
    masks, overlap, truth, image, _ = _wrong_split_and_total()
    layers = exchange_by(truth, masks, 0.1)
    guide = project_layers(layers, image, masks, EQ1_K)
    plain = exchange_layers(layers, masks, guide=guide, constant=True)
    calibrated = exchange_layers(layers, masks, guide=guide, constant=True, bias=0.03)
    moved = np.log(1 - calibrated[:, overlap]) - np.log(1 - plain[:, overlap])
    np.testing.assert_allclose(moved[0], 0.03, atol=1e-5)  # 1 - L_1 times exp(+bias)
    np.testing.assert_allclose(moved[1], -0.03, atol=1e-5)  # 1 - L_2 times exp(-bias)
    np.testing.assert_array_equal(calibrated[:, ~overlap], plain[:, ~overlap])
    # The model's calibration is applied by separate(), with the config's step or when
    # eq1-offset is asked for, and is refused with any other step.
    model = _identity_model(tiny_config, "eq1-offset")
    model.config = replace(model.config, offset_bias=0.03)
    batch = (image[None].astype(np.float32), masks[None])
    result, asked = separate(*batch, model), separate(*batch, model, boundary_blend="eq1-offset")
    model.config = replace(model.config, offset_bias=0.0)
    uncalibrated = separate(*batch, model).layers[0].numpy()
    for layers_out in (result.layers[0].numpy(), asked.layers[0].numpy()):
        shift = np.log(1 - layers_out[0][overlap]) - np.log(1 - uncalibrated[0][overlap])
        np.testing.assert_allclose(shift, 0.03, atol=1e-4)
    tensors = [torch.from_numpy(a) for a in (layers[None], image[None, None], masks[None])]
    with pytest.raises(ValueError, match="calibrates the eq1-offset step"):
        remove_seams("exchange", *tensors, torch.tensor([EQ1_K]), offset_bias=0.03)


def test_exchange_by_moves_brightness_by_a_constant_or_a_field() -> None:
    masks = _masks()
    overlap = masks[0] & masks[1]
    layers = np.stack([np.where(masks[0], 0.5, 0.0), np.where(masks[1], 0.4, 0.0)])
    moved = exchange_by(layers, masks, np.log(0.8))
    np.testing.assert_allclose(moved[0][overlap], 1 - 0.5 * 0.8, atol=1e-6)
    np.testing.assert_allclose(moved[1][overlap], 1 - 0.6 / 0.8, atol=1e-6)
    np.testing.assert_array_equal(moved[:, ~overlap], layers[:, ~overlap].astype(np.float32))
    field = np.where(overlap, np.linspace(-0.1, 0.1, WIDTH)[None, :], 0.0)
    product = (1 - exchange_by(layers, masks, field)).prod(axis=0)
    np.testing.assert_allclose(product, (1 - layers).prod(axis=0), atol=1e-6)


def test_the_offset_bias_is_checked_and_kept_by_checkpoints(tiny_config: BLSGANConfig) -> None:
    calibrated = replace(tiny_config, boundary_blend="eq1-offset", offset_bias=0.0153)
    assert BLSGANConfig.from_dict(calibrated.to_dict()) == calibrated
    older = calibrated.to_dict()
    del older["offset_bias"]
    assert BLSGANConfig.from_dict(older).offset_bias == 0.0
    with pytest.raises(ValueError, match="calibrates the eq1-offset step"):
        replace(tiny_config, boundary_blend="exchange", offset_bias=0.01)
    for wrong in (float("nan"), 1.5):
        with pytest.raises(ValueError, match="offset_bias must be finite"):
            replace(calibrated, offset_bias=wrong)
