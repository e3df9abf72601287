"""BLS-GAN model: checkpoint round trip (bit-exact), batched deterministic inference."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from blsgan_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from blsgan_core.inference import separate
from blsgan_core.joint_window import joint_window
from blsgan_core.mask_margin import widen_masks
from blsgan_core.model import (
    BLSGANConfig,
    BLSGANModel,
    load_model,
    model_checkpoint,
    model_from_checkpoint,
    save_model,
)
from blsgan_core.reconstruction import reconstruct

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_checkpoint_round_trip_is_bit_exact_on_real_joints(
    tiny_config: BLSGANConfig, overlapping_batch: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = BLSGANModel(tiny_config)
    save_model(tmp_path / "m.pt", model, "1.2.3", {"data_digest": "abc"})
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.version == "1.2.3" and loaded.metadata == {"data_digest": "abc"}
    assert loaded.config == tiny_config
    images, masks = overlapping_batch
    first, second = separate(images, masks, model), separate(images, masks, loaded)
    for name in ("layers", "k", "reconstruction"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_input_skip_survives_the_checkpoint_and_old_checkpoints_load_without_it(
    tiny_config: BLSGANConfig, overlapping_batch: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    config = replace(tiny_config, generator=replace(tiny_config.generator, input_skip=True))
    model = BLSGANModel(config)
    save_model(tmp_path / "skip.pt", model, "1", half=True)
    loaded = load_model(tmp_path / "skip.pt")
    assert loaded.config.generator.input_skip is True
    images, masks = overlapping_batch
    layers = separate(images, masks, loaded).layers
    identity = torch.from_numpy(images)[:, None] * torch.from_numpy(masks).float()
    assert (layers - identity).abs().max() <= 2e-3
    # A checkpoint written before the option existed has no such key.
    old = model_checkpoint(BLSGANModel(tiny_config), "0")
    del old.config["generator"]["input_skip"]
    save_checkpoint(tmp_path / "old.pt", old)
    assert load_model(tmp_path / "old.pt").config == tiny_config


def test_supervisor_is_saved_only_on_request(tiny_config: BLSGANConfig, tmp_path: Path) -> None:
    model = BLSGANModel(tiny_config, with_supervisor=True)
    assert "supervisor" not in model_checkpoint(model, "1").state
    save_model(tmp_path / "t.pt", model, "1", include_supervisor=True)
    rebuilt = model_from_checkpoint(load_checkpoint(tmp_path / "t.pt"), with_supervisor=True)
    assert rebuilt.supervisor is not None and model.supervisor is not None
    layers = torch.rand(1, 2, 32, 32)
    assert torch.equal(rebuilt.supervisor(layers), model.supervisor.eval()(layers))
    with pytest.raises(ValueError, match="no supervisor"):
        model_checkpoint(BLSGANModel(tiny_config), "1", include_supervisor=True)
    inference_only = model_checkpoint(BLSGANModel(tiny_config), "1")
    with pytest.raises(ValueError, match="no weights for the supervisor"):
        model_from_checkpoint(inference_only, with_supervisor=True)


@pytest.mark.parametrize("device", DEVICES)
def test_separate_is_batched_deterministic_and_restores_the_mode(
    tiny_config: BLSGANConfig, overlapping_batch: tuple[np.ndarray, np.ndarray], device: str
) -> None:
    torch.manual_seed(1)
    model = BLSGANModel(tiny_config).train()
    images, masks = overlapping_batch
    whole = separate(images, masks, model, device=device)
    again = separate(torch.from_numpy(images), torch.from_numpy(masks), model, device=device)
    chunked = separate(images, masks, model, device=device, batch_size=1)
    assert model.training
    assert torch.equal(whole.layers, again.layers) and torch.equal(whole.k, again.k)
    assert torch.allclose(whole.layers, chunked.layers, atol=1e-5)
    assert whole.layers.shape == (3, 2, 256, 256) and whole.layers.device.type == "cpu"
    assert whole.k.shape == (3,) and torch.all((whole.k > 0.05) & (whole.k < 1))
    mask_tensor = torch.from_numpy(masks).float()
    assert torch.allclose(
        whole.reconstruction, reconstruct(whole.layers, mask_tensor, whole.k), atol=1e-6
    )
    assert torch.all(whole.layers[mask_tensor == 0] == 0)


def test_no_correction_ablation_uses_k_one(tiny_config: BLSGANConfig) -> None:
    config = BLSGANConfig(
        tiny_config.generator, tiny_config.reconstructor, tiny_config.supervisor, False
    )
    model = BLSGANModel(config)
    masks = torch.zeros(2, 2, 32, 32)
    masks[:, 0, :20], masks[:, 1, 12:] = 1, 1
    result = separate(torch.rand(2, 32, 32), masks, model)
    assert torch.equal(result.k, torch.ones(2))
    assert BLSGANConfig.from_dict(config.to_dict()) == config


def test_rejects_bad_inputs_configs_and_checkpoints(
    tiny_config: BLSGANConfig, tmp_path: Path
) -> None:
    model = BLSGANModel(tiny_config)
    masks = np.zeros((1, 2, 32, 32), dtype=bool)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        separate(np.full((1, 32, 32), 2.0), masks, model)
    with pytest.raises(TypeError, match="floats"):
        separate(np.zeros((1, 32, 32), dtype=np.uint8), masks, model)
    with pytest.raises(ValueError, match="masks must be"):
        separate(np.zeros((1, 32, 32)), masks[:, :1], model)
    with pytest.raises(ValueError, match="binary"):
        separate(np.zeros((1, 32, 32)), masks + 0.5, model)
    with pytest.raises(ValueError, match="not a BLS-GAN config"):
        BLSGANConfig.from_dict({"generator": {}})
    with pytest.raises(ValueError, match="layers"):
        BLSGANConfig(supervisor=tiny_config.supervisor.__class__(n_layers=3))
    other = Checkpoint("segmenter", "1", {}, {})
    save_checkpoint(tmp_path / "seg.pt", other)
    with pytest.raises(ValueError, match="not 'blsgan'"):
        load_model(tmp_path / "seg.pt")


def test_a_reconstructor_that_sees_the_masks_runs_through_separate(
    tiny_config: BLSGANConfig,
    overlapping_batch: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    config = replace(tiny_config, reconstructor=replace(tiny_config.reconstructor, mask_channels=2))
    torch.manual_seed(0)
    model = BLSGANModel(config)
    save_model(tmp_path / "m.pt", model, "masks")
    loaded = load_model(tmp_path / "m.pt")
    images, masks = overlapping_batch
    result = separate(images, masks, loaded)
    assert result.k.shape == (len(images),)
    with pytest.raises(ValueError, match="0"):
        replace(tiny_config, reconstructor=replace(tiny_config.reconstructor, mask_channels=1))


def test_k_is_read_from_the_window_around_the_joint_space(
    tiny_config: BLSGANConfig,
    overlapping_batch: tuple[np.ndarray, np.ndarray],
    tmp_path: Path,
) -> None:
    config = replace(
        tiny_config,
        reconstructor=replace(tiny_config.reconstructor, mask_channels=2),
        reconstructor_window=64,
    )
    torch.manual_seed(0)
    fresh = BLSGANModel(config)
    with torch.no_grad():  # a fresh head gives k_init everywhere; make k depend on its input
        fresh.reconstructor.head.weight.normal_(0.0, 1.0)
    save_model(tmp_path / "w.pt", fresh, "window")
    model = load_model(tmp_path / "w.pt")
    assert model.config.reconstructor_window == 64
    images, masks = overlapping_batch
    seen: list[tuple[int, ...]] = []
    model.reconstructor.register_forward_hook(lambda _m, args, _o: seen.append(args[0].shape))
    result = separate(images.astype(np.float32), masks, model)
    assert seen == [(len(images), 1, 64, 64)]
    # The same k as the reconstructor given each joint's window by hand, and not the whole
    # joint's (which a model without the window reads).
    by_hand = []
    for image, joint_masks in zip(images, masks, strict=True):
        rows, cols = joint_window(joint_masks.astype(bool), 64)
        window = torch.from_numpy(image[None, None, rows, cols].astype(np.float32))
        by_hand.append(
            model.reconstructor(
                window, torch.from_numpy(joint_masks[None, :, rows, cols].astype(np.float32))
            )
        )
    assert torch.allclose(result.k, torch.cat(by_hand), atol=1e-6)
    whole = separate(images.astype(np.float32), masks, model_with_window(model, 0))
    assert not torch.allclose(whole.k, result.k, atol=1e-4)
    assert torch.equal(whole.layers, result.layers)  # the window touches k only


def model_with_window(model: BLSGANModel, size: int) -> BLSGANModel:
    """``model``'s weights under another ``reconstructor_window``."""
    other = BLSGANModel(replace(model.config, reconstructor_window=size))
    other.load_state_dict(model.state_dict())
    return other.eval()


def test_old_checkpoints_read_k_from_the_whole_joint_and_bad_windows_are_refused(
    tiny_config: BLSGANConfig,
) -> None:
    data = tiny_config.to_dict()
    del data["reconstructor_window"]
    assert BLSGANConfig.from_dict(data).reconstructor_window == 0
    with pytest.raises(ValueError, match="reconstructor_window"):
        replace(tiny_config, reconstructor_window=-1)
    with pytest.raises(ValueError, match="reconstructor_window"):
        replace(tiny_config, reconstructor_window=True)


def test_a_model_with_a_mask_margin_separates_with_its_masks_widened(
    tiny_config: BLSGANConfig, overlapping_batch: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """The margin travels in the checkpoint, ``separate`` widens the given masks by it and
    returns them, and the layers are those of the plain model given the widened masks."""
    torch.manual_seed(0)
    plain = BLSGANModel(tiny_config)
    save_model(tmp_path / "wide.pt", plain, "wide")
    checkpoint = load_checkpoint(tmp_path / "wide.pt")
    checkpoint.config["mask_margin_px"] = 2
    save_checkpoint(tmp_path / "wide.pt", checkpoint)
    wide = load_model(tmp_path / "wide.pt")
    assert wide.config.mask_margin_px == 2
    images, masks = overlapping_batch
    result = separate(images, masks, wide)
    assert result.masks is not None
    widened = widen_masks(torch.from_numpy(masks), 2)
    assert torch.equal(result.masks, widened)
    assert float(widened.sum()) > float(masks.sum())
    reference = separate(images, widened.numpy(), plain)
    assert reference.masks is None
    assert torch.allclose(result.layers, reference.layers, atol=1e-6)
    assert torch.all(result.layers[widened == 0] == 0)
    del checkpoint.config["mask_margin_px"]  # written before the setting: no margin
    assert BLSGANConfig.from_dict(checkpoint.config).mask_margin_px == 0
    for bad in (-1, 9, 1.0, True):
        with pytest.raises(ValueError, match="mask_margin_px"):
            replace(tiny_config, mask_margin_px=bad)
