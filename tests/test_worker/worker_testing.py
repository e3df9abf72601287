"""Helpers of the worker tests: a small BLS-GAN, node settings, a booked job.

Import as ``from worker_testing import ...`` (``tests/test_worker`` is on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydicom import dcmread

from blsgan_core.model import BLSGANConfig, BLSGANModel, save_model
from blsgan_core.networks.generator import GeneratorConfig
from blsgan_core.networks.reconstructor import ReconstructorConfig
from blsgan_core.networks.supervisor import SupervisorConfig
from blsgan_core.registry import ModelRegistry
from dicom_node.db import jobs as job_rows
from dicom_node.db import open_database
from dicom_node.db.instances import InstanceRecord, add_instance
from dicom_node.settings import Settings, load_settings

# An atlas hand the shipped localiser did not train on (its validation split).
ATLAS_ID = "3149"
# Half the atlas resolution keeps every test quick (spacing 0.3 mm).
SCALE = 0.5
TEST_MODEL_VERSION = "0.0.1-test"


def tiny_blsgan(path: Path, version: str = TEST_MODEL_VERSION, seed: int = 0) -> Path:
    """A randomly initialised BLS-GAN checkpoint small enough for CPU tests."""
    torch.manual_seed(seed)
    unet = {"base_channels": 8, "depth": 3}
    config = BLSGANConfig(
        generator=GeneratorConfig(backbone_options=unet),
        reconstructor=ReconstructorConfig(channels=(8, 8), convs_per_stage=(1, 1)),
        supervisor=SupervisorConfig(backbone_options=unet),
    )
    save_model(path, BLSGANModel(config), version)
    return path


def promote_blsgan(registry_dir: Path, name: str = "tiny", **kwargs: Any) -> ModelRegistry:
    """A registry at ``registry_dir`` with a tiny BLS-GAN registered as ``name`` and promoted."""
    registry = ModelRegistry(registry_dir)
    registry.register(tiny_blsgan(registry_dir.parent / f"{name}-source.pt", **kwargs), name)
    registry.promote(name)
    return registry


def promote_untrained_front_end(registry_dir: Path) -> ModelRegistry:
    """Untrained localiser and segmenter promoted in a registry: for tests of the model
    cache, which load and swap models but never look at their answers."""
    from blsgan_core.joints.model import Localiser, LocaliserConfig, save_localiser
    from blsgan_core.segment.model import Segmenter, SegmenterConfig, save_segmenter

    registry = ModelRegistry(registry_dir, shipped_dir=None)
    folder = registry_dir.parent
    save_localiser(folder / "loc.pt", Localiser(LocaliserConfig()), "0.0.0-untrained", {})
    save_segmenter(folder / "seg.pt", Segmenter(SegmenterConfig()), "0.0.0-untrained", {})
    for name in ("loc", "seg"):
        registry.register(folder / f"{name}.pt", f"untrained-{name}")
        registry.promote(f"untrained-{name}")
    return registry


def node_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test node in ``data_dir`` (filesystem broker unless overridden)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "storage": {"min_free_bytes": 0},
        "logging": {"to_file": False},
        "worker": {"embedded": False},
    }
    return load_settings(**(values | overrides))


def add_job(settings: Settings, source: Path, destinations: list[str]) -> int:
    """Book ``source`` as a received instance with a queued job, as the listener does."""
    header = dcmread(source, stop_before_pixels=True)
    database = open_database(settings.database_url)
    try:
        with database.sessions.begin() as session:
            instance_id = add_instance(
                session,
                InstanceRecord(
                    sop_instance_uid=header.SOPInstanceUID,
                    sop_class_uid=header.SOPClassUID,
                    study_instance_uid=header.StudyInstanceUID,
                    series_instance_uid=header.SeriesInstanceUID,
                    transfer_syntax_uid=header.file_meta.TransferSyntaxUID,
                    path=str(source),
                    size_bytes=source.stat().st_size,
                    modality=header.Modality,
                ),
            )
            return job_rows.create_job(session, instance_id, "hand-pa", destinations)
    finally:
        database.dispose()
