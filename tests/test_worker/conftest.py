"""Fixtures of the worker tests: real-radiograph DX files, models, a small BLS-GAN.

The localiser and the segmenter are the weights shipped with the package (the product's
own front end). No trained BLS-GAN ships yet, so a small randomly initialised ``blsgan``
checkpoint is registered and promoted in a test registry: its layers are not meaningful,
but every shape, range, file and DICOM object downstream of it is real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_factory import make_dx, write_dataset
from worker_testing import ATLAS_ID, SCALE, promote_blsgan

from blsgan_core.registry import ModelRegistry
from worker.models import ModelCache, Models


@pytest.fixture(scope="session")
def atlas_image(hand_radiographs_dir: Path) -> Path:
    """The atlas JPEG the DX files are made of."""
    return hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg"


@pytest.fixture(scope="session")
def session_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """A registry with the tiny BLS-GAN promoted (front end: the shipped weights)."""
    return promote_blsgan(tmp_path_factory.mktemp("models") / "registry")


@pytest.fixture(scope="session")
def models(session_registry: ModelRegistry) -> Models:
    """The three models, loaded once for the session, on the CPU."""
    return ModelCache(session_registry, "cpu").models()


@pytest.fixture(scope="session")
def dicom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's DX files are written."""
    return tmp_path_factory.mktemp("dicom")


@pytest.fixture(scope="session")
def dx_left(atlas_image: Path, dicom_dir: Path) -> Path:
    """One left hand, DX For Presentation, 12 bits, MONOCHROME2, explicit VR."""
    return write_dataset(make_dx(atlas_image, scale=SCALE), dicom_dir / "left.dcm")


@pytest.fixture(scope="session")
def dx_both(atlas_image: Path, dicom_dir: Path) -> Path:
    """Both hands on one image, MONOCHROME1, 14 bits, calibrated spacing."""
    dataset = make_dx(
        atlas_image,
        scale=SCALE,
        two_hands=True,
        photometric="MONOCHROME1",
        bits_stored=14,
        calibrated_spacing=True,
    )
    return write_dataset(dataset, dicom_dir / "both.dcm")


@pytest.fixture(scope="session")
def dx_right_j2k(atlas_image: Path, dicom_dir: Path) -> Path:
    """One right hand, JPEG 2000 (lossy), 16 bits."""
    from pydicom.uid import JPEG2000

    dataset = make_dx(
        atlas_image, scale=SCALE, right=True, bits_stored=16, transfer_syntax=JPEG2000
    )
    return write_dataset(dataset, dicom_dir / "right-j2k.dcm")


@pytest.fixture
def blank_dx(atlas_image: Path, tmp_path: Path) -> Path:
    """A valid DX whose pixels are all one value: decodes, but shows no hand."""
    import numpy as np

    dataset = make_dx(atlas_image, scale=SCALE, uid_seed="blank")
    dataset.PixelData = np.full((dataset.Rows, dataset.Columns), 2000, np.uint16).tobytes()
    return write_dataset(dataset, tmp_path / "blank.dcm")
