"""Seen in a real viewer: OHIF, served on loopback before an Orthanc with its DICOMweb
plugin, shows a processed radiograph in headless Chromium with the Structured Report's
joint regions drawn over it. The screenshot is checked for the overlay at the places the
report names, not only for a page.

OHIF 3.13 draws TID 1500 groups that have an image region (SCOORD); it does not render
Grayscale Softcopy Presentation States, so the GSPS is not what is seen here.
"""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from chromium import Chromium
from dicom_factory import make_dx, write_dataset
from loopback import wait_until
from ohif_viewer import running_ohif
from orthanc_server import running_orthanc
from PIL import Image
from worker_testing import ATLAS_ID, SCALE, promote_blsgan

from dicom_node.derived.write import OutputKind
from dicom_node.settings import OutputSettings
from worker.models import ModelCache
from worker.pipeline import run_pipeline

# OHIF's SR display tool draws the selected group green (0, 255, 0), the others yellow
# (255, 255, 0): green high, blue low. The radiograph is grey (R = G = B): none of them.
OVERLAY_MIN, OVERLAY_MAX_BLUE = 170, 90
# Screen pixels around a region's vertex that must hold an overlay pixel (dashed lines).
NEAR_PX = 5

SCREEN_POINTS = """(() => {
  const viewport = cornerstone.getEnabledElements()[0].viewport;
  const imageId = viewport.getCurrentImageId();
  const box = viewport.canvas.getBoundingClientRect();
  const scale = box.width / viewport.canvas.width;
  return JSON.stringify(%s.map(region => region.map(([column, row]) => {
    const world = cornerstone.utilities.imageToWorldCoords(imageId, [column, row]);
    const [x, y] = viewport.worldToCanvas(world);
    return [box.left + x * scale, box.top + y * scale];
  })));
})()"""
DRAWN = "document.querySelectorAll('.svg-layer polyline, .svg-layer path').length"
SKIP_TOUR = """(() => {
  const skip = [...document.querySelectorAll('button')]
    .find(b => b.textContent.trim() === 'Skip all');
  if (skip) { skip.click(); return true; }
  return false;
})()"""


def _overlay(picture: np.ndarray) -> np.ndarray:
    red, green, blue = (picture[..., channel].astype(int) for channel in range(3))
    return (
        (green >= OVERLAY_MIN)
        & (blue <= OVERLAY_MAX_BLUE)
        & ((red >= OVERLAY_MIN) | (red <= OVERLAY_MAX_BLUE))
    )


@pytest.mark.e2e
def test_ohif_shows_the_radiograph_with_each_joint_region(
    tmp_path: Path, hand_radiographs_dir: Path, record: list[Path]
) -> None:
    dataset = make_dx(hand_radiographs_dir / "images" / f"{ATLAS_ID}.jpg", scale=SCALE)
    # OHIF 3.13.2 fails to load an image that has a VOI LUT Function ("Invalid VOI LUT
    # function"), whatever its value; many DX carry none.
    del dataset.VOILUTFunction
    source = write_dataset(dataset, tmp_path / "hand.dcm")
    models = ModelCache(promote_blsgan(tmp_path / "registry"), "cpu").models()
    result = run_pipeline(source, models, OutputSettings(), tmp_path / "out")
    report = next(o for o in result.outputs if o.kind is OutputKind.STRUCTURED_REPORT)
    regions = _regions(report.path)
    assert len(regions) == 5

    with running_orthanc(tmp_path / "orthanc", dicomweb=True) as orthanc:
        for file in (source, *(output.path for output in result.outputs)):
            assert orthanc.upload(file)["Status"] == "Success"
        with (
            running_ohif(orthanc.url) as viewer,
            Chromium(tmp_path / "profile", webgl=True) as browser,
        ):
            browser.goto(
                f"{viewer}/viewer?StudyInstanceUIDs={dataset.StudyInstanceUID}"
                f"&initialSeriesInstanceUID={report.series_instance_uid}"
            )
            # One drawn outline per group, once the image and the report have loaded.
            wait_until(lambda: browser.evaluate(DRAWN) >= len(regions), 120.0, "SR overlay")
            wait_until(lambda: browser.evaluate(SKIP_TOUR) or True, 5.0, "tour closed")
            browser.evaluate(DRAWN)  # a round trip: the tour's removal has been painted
            points = json.loads(browser.evaluate(SCREEN_POINTS % json.dumps(regions)))
            shot = browser.screenshot(tmp_path / "ohif-radiograph-with-sr-regions.png")
    record.append(shot)

    picture = np.asarray(Image.open(shot).convert("RGB"))
    overlay = _overlay(picture)
    grey = np.abs(picture.astype(int) - picture.mean(axis=2, keepdims=True)).max(axis=2) <= 4
    # The radiograph is on screen: a large area of varied grey values.
    assert grey.sum() > 0.3 * grey.size and picture[grey].std() > 20
    for region in points:
        near = [
            overlay[
                max(0, round(y) - NEAR_PX) : round(y) + NEAR_PX + 1,
                max(0, round(x) - NEAR_PX) : round(x) + NEAR_PX + 1,
            ].any()
            for x, y in region
        ]
        # Each joint's region is drawn where the report puts it (most vertices; dashed).
        assert np.mean(near) >= 0.6, (np.mean(near), region[:3])
    assert overlay.sum() > 200


def _regions(path: Path) -> list[list[list[float]]]:
    """Each group's image region as (column, row) points, as stored in the report."""
    groups = hd.sr.srread(path).content.get_planar_roi_measurement_groups()
    return [group.roi.value.tolist() for group in groups if group.roi is not None]
