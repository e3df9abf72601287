"""The per-process model cache: lazy, loaded once, swapped when a new model is promoted.

The cache never looks at a model's answers, so untrained front-end networks promoted in
each test's registry stand in for the shipped ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from worker_testing import (
    TEST_MODEL_VERSION,
    promote_blsgan,
    promote_untrained_front_end,
    tiny_blsgan,
)

from blsgan_core.registry import ModelRegistry
from worker.failures import PermanentError
from worker.models import ModelCache, parse_device


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """A registry with untrained front-end models and the tiny BLS-GAN promoted."""
    promote_untrained_front_end(tmp_path / "registry")
    return promote_blsgan(tmp_path / "registry")


@pytest.fixture
def front_end_only(tmp_path: Path) -> ModelRegistry:
    """A registry with untrained front-end models and no BLS-GAN."""
    return promote_untrained_front_end(tmp_path / "front-end")


def test_models_load_once_in_eval_mode(registry: ModelRegistry) -> None:
    cache = ModelCache(registry)
    first = cache.models()
    second = cache.models()
    assert first.blsgan is second.blsgan and first.localiser is second.localiser
    assert not first.blsgan.training and not first.segmenter.training
    assert first.info.version == TEST_MODEL_VERSION
    assert first.info.name == "BLS-GAN tiny"
    assert first.describe()["blsgan"]["name"] == "tiny"


def test_a_newly_promoted_model_is_used_for_the_next_job(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    cache = ModelCache(registry)
    before = cache.models()
    registry.register(tiny_blsgan(tmp_path / "v2.pt", version="0.0.2-test", seed=1), "tiny2")
    registry.promote("tiny2")
    after = cache.models()
    assert after.info.version == "0.0.2-test"
    assert after.blsgan is not before.blsgan
    assert after.localiser is before.localiser  # unchanged kinds are not reloaded


def test_a_broken_promotion_keeps_the_loaded_model(
    registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ModelCache(registry)
    before = cache.models()
    (registry.directory / "tiny.pt").write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.ERROR, logger="worker.models"):
        after = cache.models()
    assert after.blsgan is before.blsgan
    assert "keeping BLS-GAN model tiny" in caplog.text


def test_without_a_promoted_blsgan_the_reason_says_so(front_end_only: ModelRegistry) -> None:
    with pytest.raises(PermanentError, match="no BLS-GAN model is promoted"):
        ModelCache(front_end_only).models()


def test_an_explicit_checkpoint_wins_over_the_registry(
    front_end_only: ModelRegistry, tmp_path: Path
) -> None:
    path = tiny_blsgan(tmp_path / "given.pt", version="9.9.9")
    models = ModelCache(front_end_only, overrides={"blsgan": path}).models()
    assert models.info.version == "9.9.9"
    assert models.files["blsgan"].path == path
    missing = ModelCache(front_end_only, overrides={"blsgan": tmp_path / "none.pt"})
    with pytest.raises(PermanentError, match="does not exist"):
        missing.models()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    with pytest.raises(PermanentError, match="not a readable checkpoint"):
        ModelCache(front_end_only, overrides={"blsgan": junk}).models()


def test_arguments_are_validated(front_end_only: ModelRegistry) -> None:
    with pytest.raises(ValueError, match="unknown model kinds"):
        ModelCache(front_end_only, overrides={"gan": Path("x.pt")})
    with pytest.raises(ValueError, match="unknown torch device 'quantum'"):
        parse_device("quantum")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            parse_device("cuda")
    assert parse_device("cpu").type == "cpu"


def test_a_checkpoint_of_another_architecture_version_is_refused(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    from blsgan_core.checkpoint import Checkpoint, save_checkpoint

    old = tmp_path / "old-localiser.pt"
    save_checkpoint(old, Checkpoint("localiser", "0.0.0-old", {"landmark_size": 256}, {}))
    cache = ModelCache(registry, overrides={"localiser": old})
    with pytest.raises(PermanentError, match="joint localiser model old-localiser does not fit"):
        cache.models()
