"""Fixtures of the derived-object tests: real-radiograph DX sources and synthetic results."""

from __future__ import annotations

from pathlib import Path

import pytest
from derived_fixtures import AtlasHand, atlas_hand, synthetic_result
from dicom_factory import make_dx
from pydicom.dataset import Dataset

from dicom_node.derived.model import RadiographResult
from dicom_node.derived.uids import OutputUids
from dicom_node.pixels import load_radiograph
from dicom_node.settings import OutputSettings

# Half the atlas resolution keeps every test quick; the spacing becomes 0.3 mm.
SCALE = 0.5
ATLAS_ID = "3143"


@pytest.fixture(scope="session")
def atlas(hand_radiographs_dir: Path) -> AtlasHand:
    """One real atlas hand with its landmarks."""
    return atlas_hand(hand_radiographs_dir, ATLAS_ID)


@pytest.fixture(scope="session")
def dx_left(atlas: AtlasHand) -> Dataset:
    """A DX For Presentation of the left hand (12 bits, MONOCHROME2)."""
    return make_dx(atlas.image, scale=SCALE)


@pytest.fixture(scope="session")
def dx_both(atlas: AtlasHand) -> Dataset:
    """A DX of both hands side by side (MONOCHROME1, 14 bits, calibrated spacing)."""
    return make_dx(
        atlas.image,
        scale=SCALE,
        two_hands=True,
        photometric="MONOCHROME1",
        bits_stored=14,
        calibrated_spacing=True,
    )


@pytest.fixture(scope="session")
def result_left(atlas: AtlasHand, dx_left: Dataset) -> RadiographResult:
    """Synthetic results for the five joints of the left hand."""
    return synthetic_result(atlas, load_radiograph(dx_left).pixels, scale=SCALE)


@pytest.fixture(scope="session")
def result_both(atlas: AtlasHand, dx_both: Dataset) -> RadiographResult:
    """Synthetic results for ten joints of two hands."""
    return synthetic_result(atlas, load_radiograph(dx_both).pixels, scale=SCALE, layout="both")


@pytest.fixture(params=["left", "both"])
def radiograph(request: pytest.FixtureRequest) -> tuple[Dataset, RadiographResult]:
    """Each source with its results in turn: one hand, then two hands."""
    which = request.param
    return request.getfixturevalue(f"dx_{which}"), request.getfixturevalue(f"result_{which}")


@pytest.fixture
def outputs() -> OutputSettings:
    """The default naming of derived objects."""
    return OutputSettings()


@pytest.fixture
def uids_left(dx_left: Dataset, result_left: RadiographResult) -> OutputUids:
    """Output UIDs of the left-hand radiograph."""
    return OutputUids(dx_left.SOPInstanceUID, result_left.model.version)
