"""Model registry: register, list, promote, shipped fallback, integrity."""

import json
import shutil
from pathlib import Path

import pytest

from blsgan_core.checkpoint import Checkpoint, save_checkpoint
from blsgan_core.registry import SHIPPED_WEIGHTS_DIR, ModelRegistry, validate_name


def _checkpoint(kind: str = "blsgan", version: str = "1.0") -> Checkpoint:
    return Checkpoint(kind, version, {"n": 1}, {}, {"metrics": {"ssim": 0.9}})


def test_register_list_get_and_cards(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models", shipped_dir=None)
    first = registry.register(_checkpoint(), "blsgan-a", card_markdown="# A\n")
    save_checkpoint(tmp_path / "seg.pt", _checkpoint("segmenter", "2.0"))
    second = registry.register(tmp_path / "seg.pt", "seg-b")
    assert [e.name for e in registry.list_models()] == ["blsgan-a", "seg-b"]
    assert [e.name for e in registry.list_models("segmenter")] == ["seg-b"]
    assert first.kind == "blsgan" and second.version == "2.0"
    card = json.loads((tmp_path / "models" / "blsgan-a.json").read_text())
    assert card["metadata"] == {"metrics": {"ssim": 0.9}} and len(card["sha256"]) == 64
    assert (tmp_path / "models" / "blsgan-a.md").read_text() == "# A\n"
    assert registry.get("seg-b").path == tmp_path / "models" / "seg-b.pt"
    registry.verify(first)
    with pytest.raises(ValueError, match="already exists"):
        registry.register(_checkpoint(), "blsgan-a")
    with pytest.raises(ValueError, match="no model named 'other'"):
        registry.get("other")


def test_promote_and_promoted(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path, shipped_dir=None)
    assert registry.promoted("blsgan") is None
    registry.register(_checkpoint(version="1"), "one")
    registry.register(_checkpoint(version="2"), "two")
    registry.promote("one")
    entry = registry.promoted("blsgan")
    assert entry is not None and entry.name == "one"
    registry.promote("two")
    assert json.loads((tmp_path / "promoted.json").read_text()) == {"blsgan": "two"}
    assert registry.promoted("segmenter") is None


def test_shipped_weights_are_the_fallback(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    ModelRegistry(shipped, shipped_dir=None).register(_checkpoint(version="0.9"), "factory")
    registry = ModelRegistry(tmp_path / "models", shipped_dir=shipped)
    entry = registry.promoted("blsgan")
    assert entry is not None and entry.name == "factory" and entry.shipped
    registry.register(_checkpoint(version="1.0"), "local")
    assert registry.promoted("blsgan") == entry  # registering alone changes nothing
    registry.promote("local")
    promoted = registry.promoted("blsgan")
    assert promoted is not None and promoted.name == "local" and not promoted.shipped
    # Two shipped models of one kind and no shipped choice: nothing to fall back on.
    ModelRegistry(shipped, shipped_dir=None).register(_checkpoint(), "factory2")
    assert ModelRegistry(tmp_path / "empty", shipped_dir=shipped).promoted("blsgan") is None
    (shipped / "promoted.json").write_text(json.dumps({"blsgan": "factory2"}))
    chosen = ModelRegistry(tmp_path / "empty", shipped_dir=shipped).promoted("blsgan")
    assert chosen is not None and chosen.name == "factory2"


def test_package_ships_one_intact_model_of_each_kind(tmp_path: Path) -> None:
    registry = ModelRegistry.for_node(tmp_path, use_shipped_weights=True)
    for kind in ("blsgan", "localiser", "segmenter"):
        entry = registry.promoted(kind)
        assert entry is not None and entry.shipped and entry.path.parent == SHIPPED_WEIGHTS_DIR
        registry.verify(entry)
        assert entry.path.stat().st_size < 20 * 2**20
        assert entry.path.with_suffix(".md").is_file(), f"{entry.name} has no model card"
    site_only = ModelRegistry.for_node(tmp_path, use_shipped_weights=False)
    assert site_only.promoted("blsgan") is None and site_only.list_models() == []


def test_hand_copied_checkpoint_tampering_and_bad_names(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "manual.pt", _checkpoint(version="3"))
    registry = ModelRegistry(tmp_path, shipped_dir=None)
    entry = registry.get("manual")
    assert entry.version == "3" and entry.kind == "blsgan"
    registered = registry.register(tmp_path / "manual.pt", "copy")
    shutil.copy(tmp_path / "manual.pt", tmp_path / "other.pt")
    save_checkpoint(tmp_path / "copy.pt", _checkpoint(version="4"))
    with pytest.raises(ValueError, match="its card says"):
        registry.verify(registered)
    for name in ("../evil", "", "a/b", "x.pt", "-dash"):
        with pytest.raises(ValueError, match="invalid model name"):
            validate_name(name)
    with pytest.raises(ValueError, match="invalid model name"):
        registry.promote("../evil")
