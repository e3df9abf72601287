"""Presets are data files; configs validate what they are given."""

from dataclasses import replace
from pathlib import Path

import pytest

from trainer.config import PRESETS, ModelSection, load_preset, with_ablations


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_and_has_two_phases(name: str) -> None:
    config = load_preset(name)
    assert config.preset == name
    assert [phase for phase, _ in config.phases] == [1, 2]
    assert config.data.crop_size % config.size_multiple == 0


def test_paper_preset_is_the_papers_schedule() -> None:
    config = load_preset("paper")
    assert (config.optim.lr, config.optim.batch_size) == (1e-5, 12)
    assert config.phases == ((1, 250), (2, 50))
    assert config.data.crop_size == 256
    weights = config.optim.weights()
    assert (weights.a0, weights.b0, weights.a1, weights.b1) == (0.5, 0.5, 0.5, 0.5)
    # Eq. 4 and 5 add their true-layer terms with weight 1; no departure is on.
    assert (weights.g0, weights.g1, weights.k_truth, weights.overlap_emphasis) == (1, 1, 0, 0)
    assert config.optim.supervisor_lr_factor == 1 and not config.optim.phase2_ground_truth
    assert config.model.blsgan_config().reconstructor.mask_channels == 0
    assert config.data.given_mask_noise_px == 0  # the networks see the exact masks
    assert config.data.mask_margin_px == config.blsgan_config().mask_margin_px == 0


def test_only_the_skip_presets_turn_on_the_input_skip() -> None:
    skip = load_preset("cpu-skip")
    assert skip.model.blsgan_config().generator.input_skip is True
    # gpu-skip is cpu-skip on the paper's 256 px joints, with more epochs.
    gpu = load_preset("gpu-skip")
    assert gpu.model == skip.model and gpu.optim.loss_weights == skip.optim.loss_weights
    assert (gpu.data.crop_size, skip.data.crop_size) == (256, 128)
    assert gpu.blsgan_config().reconstructor_window == 256  # k read from the whole joint
    # gpu-skip-mixed is gpu-skip with half of the synthetic overlaps soft-edged.
    mixed = load_preset("gpu-skip-mixed")
    assert mixed.data.synthetic == {"hidden_edge_sigma": 1.5, "hard_edge_fraction": 0.5}
    assert replace(mixed, description=gpu.description, preset=gpu.preset, data=gpu.data) == gpu
    for name in ("paper", "cpu", "tiny"):
        assert load_preset(name).model.blsgan_config().generator.input_skip is False
    # The same networks as `cpu` otherwise (but for k = R(J, M), a departure of cpu-skip),
    # and fine-tuning keeps the option.
    cpu = load_preset("cpu").model
    assert skip.model.reconstructor == {"mask_channels": 2}
    assert replace(skip.model, generator_input_skip=False, reconstructor={}) == cpu
    rebuilt = ModelSection.from_blsgan_config(skip.model.blsgan_config())
    assert rebuilt.generator_input_skip is True
    assert rebuilt.blsgan_config() == skip.model.blsgan_config()


def test_ablations_drop_phase_one_and_the_correction() -> None:
    config = with_ablations(load_preset("tiny"), no_pretrain=True, no_correction=True)
    assert config.phases == ((2, config.optim.finetune_epochs),)
    assert config.ablation.correction is False


def test_a_preset_file_with_a_typo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[optim]\nlearning_rate = 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_preset(path)
    with pytest.raises(ValueError, match="neither"):
        load_preset("no-such-preset")


def test_crop_size_must_fit_the_networks_depth() -> None:
    with pytest.raises(ValueError, match="multiple of 64"):
        load_preset("cpu").with_overrides(data={"crop_size": 96})
    with pytest.raises(ValueError, match="lr"):
        load_preset("tiny").with_overrides(optim={"lr": 0})
    for noise in (-0.5, True, "2"):
        with pytest.raises(ValueError, match="given_mask_noise_px"):
            load_preset("tiny").with_overrides(data={"given_mask_noise_px": noise})
    for margin in (-1, 1.5, 9):
        with pytest.raises(ValueError, match="mask_margin_px"):
            load_preset("tiny").with_overrides(data={"mask_margin_px": margin})


def test_overrides_round_trip_through_plain_data() -> None:
    config = load_preset("cpu")
    assert config.with_overrides() == config
    assert config.with_overrides(optim={"batch_size": 3}).optim.batch_size == 3


FINETUNE = Path(__file__).parents[2] / "trainer" / "presets" / "finetune"


@pytest.mark.parametrize("path", sorted(FINETUNE.glob("*.toml")), ids=lambda p: p.stem)
def test_the_shipped_models_fine_tuning_presets_keep_its_networks(path: Path) -> None:
    """The card of `blsgan-cpu` names these files; each continues `gpu-skip-mixed`'s networks,
    departs from the paper's losses only by named options, and keeps the paper's phase-2 data
    but for the real slivers of ft31 and later, the widened masks of ft41 and later and the
    moved outlines of ft41 alone."""
    config = load_preset(path)
    mixed = load_preset("gpu-skip-mixed")
    assert config.model == mixed.model
    assert config.data.synthetic == mixed.data.synthetic
    weights = config.optim.weights()
    assert weights.unseparated_overlap_fake and weights.seam > 0
    run = int(path.stem[2:4])
    assert config.data.min_real_overlap_px == (100 if run >= 31 else 1)
    widened = run >= 41
    assert config.data.mask_margin_px == (1 if widened else 0)
    assert config.data.given_mask_noise_px == (1.0 if run == 41 else 0.0)
    assert config.blsgan_config().mask_margin_px == config.data.mask_margin_px
    assert (weights.soft_tissue_rim > 0) == widened
