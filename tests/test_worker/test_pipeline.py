"""The pipeline on DX files made from a real hand radiograph: hands, joints, valid DICOM."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from dicom_factory import make_dx, write_dataset
from dicom_validation import dciodvfy
from PIL import Image
from pydicom import dcmread
from worker_testing import ATLAS_ID, SCALE, TEST_MODEL_VERSION

from blsgan_core.harmonise import PERCENTILES, REFERENCE
from blsgan_core.segment import node_masks
from dicom_node.derived.model import Side
from dicom_node.derived.segmentation import BonePart, segment_layout
from dicom_node.derived.write import OutputKind
from dicom_node.settings import OutputSettings
from worker.failures import PermanentError
from worker.models import Models
from worker.pipeline import STAGES, PipelineResult, cut_crops, find_hands, read_source, run_pipeline

MCP_LANDMARKS = (18, 21, 25, 29, 33)


@contextmanager
def blsgan_batches(models: Models) -> Iterator[list[np.ndarray]]:
    """Record the masks ``(B, 2, H, W)`` of every BLS-GAN forward pass made inside the block."""
    given: list[np.ndarray] = []
    handle = models.blsgan.register_forward_hook(
        lambda _module, inputs, _output: given.append(inputs[1].numpy() > 0.5)
    )
    try:
        yield given
    finally:
        handle.remove()


def atlas_mcp_points(hand_radiographs_dir: Path) -> np.ndarray:
    """The five MCP landmarks of the atlas hand, (x, y) at the test scale."""
    with (hand_radiographs_dir / "landmarks.csv").open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["id"] == ATLAS_ID)
    return np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in MCP_LANDMARKS]) * SCALE


def check_every_output(result: PipelineResult, source: Path) -> None:
    """Each written file passes dciodvfy and reads back with highdicom as what it claims."""
    study = dcmread(source, stop_before_pixels=True).StudyInstanceUID
    for output in result.outputs:
        report = dciodvfy(output.path)
        assert not report.errors, report.summary()
        assert output.study_instance_uid == study
        if output.kind is OutputKind.SEGMENTATION:
            read = hd.seg.segread(output.path)
        elif output.kind is OutputKind.STRUCTURED_REPORT:
            read = hd.sr.srread(output.path)
        elif output.kind is OutputKind.PRESENTATION_STATE:
            read = dcmread(output.path)
            assert read.Modality == "PR"
        else:
            read = hd.Image.from_file(output.path)
        assert read.SOPInstanceUID == output.sop_instance_uid


def check_segmentation(result: PipelineResult, source: Path) -> None:
    """The SEG holds every joint's upper, lower and overlap mask exactly as computed."""
    seg_file = next(o for o in result.outputs if o.kind is OutputKind.SEGMENTATION)
    seg = hd.seg.segread(seg_file.path)
    layout = segment_layout(result.result)
    assert seg.number_of_segments == len(layout) == 15 * len(result.result.hands)
    masks = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[result.source_sop_instance_uid],
        segment_numbers=seg.segment_numbers,
    )[0].astype(bool)
    by_key = {(side, joint.joint): joint for side, joint in result.result.joints()}
    for spec in layout:
        joint = by_key[(spec.side, spec.joint)]
        want = {
            BonePart.UPPER: joint.upper_mask,
            BonePart.LOWER: joint.lower_mask,
            BonePart.OVERLAP: joint.overlap_mask,
        }[spec.part]
        np.testing.assert_array_equal(masks[..., spec.number - 1], want)
        assert seg.get_segment_description(spec.number).algorithm_identification[
            0
        ].AlgorithmVersion == (TEST_MODEL_VERSION)
    header = dcmread(source, stop_before_pixels=True)
    assert masks.shape[:2] == (header.Rows, header.Columns)


def check_joints(result: PipelineResult) -> None:
    """Every joint's bone masks lie at its located centre; k and errors are plausible."""
    located = {(h.side, j.name): j for h in result.hands for j in h.joints}
    for side, joint in result.result.joints():
        centre = located[(side.value, joint.joint.value)]
        bones = joint.upper_mask | joint.lower_mask
        assert bones.any()
        rows, cols = np.nonzero(bones)
        # Masks come back from a crop of 1.2 x MCP2-MCP3 around the joint centre.
        reach = max(np.hypot(cols - centre.x, rows - centre.y))
        hand = next(h for h in result.hands if h.side == side.value)
        assert reach <= 0.6 * 1.2 * hand.mcp2_mcp3_px * np.sqrt(2) + 2
        # The crop's corners (DICOM pixel coordinates) surround the located centre.
        assert joint.crop_corners is not None
        np.testing.assert_allclose(
            joint.crop_corners.mean(axis=0), [centre.x + 0.5, centre.y + 0.5]
        )
        assert 0.0 < joint.k <= 1.0
        assert joint.error.mse >= 0 and -1 <= joint.error.ssim <= 1


@pytest.fixture(scope="module")
def left_result(
    models: Models, dx_left: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineResult, list[np.ndarray]]:
    with blsgan_batches(models) as batches:
        result = run_pipeline(
            dx_left, models, OutputSettings(), tmp_path_factory.mktemp("left-out")
        )
    return result, batches


def test_one_hand_gives_five_joints_in_one_batch(
    left_result: tuple[PipelineResult, list[np.ndarray]], hand_radiographs_dir: Path
) -> None:
    result, batches = left_result
    assert [hand.side for hand in result.hands] == ["L"]
    assert [len(masks) for masks in batches] == [5]
    names = [joint.joint.value for _, joint in result.result.joints()]
    assert names == ["MCP1", "MCP2", "MCP3", "MCP4", "MCP5"]
    # The located joints are the atlas' MCP joints (the centre lies 0.1 of the hand's
    # MCP2-MCP3 distance towards the wrist from the landmark).
    hand = result.hands[0]
    found = np.array([[j.x, j.y] for j in hand.joints])
    expected = atlas_mcp_points(hand_radiographs_dir)
    distances = np.hypot(*(found - expected).T) / hand.mcp2_mcp3_px
    assert distances.max() < 0.35, distances
    check_joints(result)


def test_the_separator_gets_masks_widened_towards_the_other_bone(
    left_result: tuple[PipelineResult, list[np.ndarray]], models: Models, dx_left: Path
) -> None:
    """BLS-GAN gets ``node_masks``' separation masks; what is stored and shown are the
    outlines (the SEG's masks are checked against the same outlines above)."""
    result, batches = left_result
    pixels = read_source(dx_left)[1].pixels
    crops = cut_crops(pixels, find_hands(pixels, models), models.segmenter.config.crop_size).crops
    expected = node_masks(crops, models.segmenter)
    np.testing.assert_array_equal(batches[0], expected.for_separation)
    stored = np.stack([joint.masks for joint in result.joint_layers.values()])
    np.testing.assert_array_equal(stored, expected.outlines)
    assert (batches[0] & ~stored).any()


def test_one_hand_outputs_are_valid_dicom(left_result, dx_left: Path) -> None:
    result, _ = left_result
    kinds = [output.kind for output in result.outputs]
    assert kinds.count(OutputKind.SEGMENTATION) == 1
    assert kinds.count(OutputKind.SECONDARY_CAPTURE) == 1 + 5 * 3
    assert kinds.count(OutputKind.STRUCTURED_REPORT) == 1
    assert kinds.count(OutputKind.PRESENTATION_STATE) == 1
    check_every_output(result, dx_left)
    check_segmentation(result, dx_left)


def test_report_and_timings(left_result) -> None:
    result, _ = left_result
    data = result.as_dict()
    assert set(data["timings_s"]) == set(data["cpu_s"]) == {*STAGES, "total"}
    assert all(data["timings_s"][stage] > 0 for stage in STAGES)
    assert data["cpu_s"]["separate"] > 0
    assert data["timings_s"]["total"] == pytest.approx(
        sum(data["timings_s"][stage] for stage in STAGES)
    )
    assert data["model"]["version"] == TEST_MODEL_VERSION
    joints = data["hands"][0]["joints"]
    ks = {joint.joint.value: joint.k for _, joint in result.result.joints()}
    assert {j["name"]: j["k"] for j in joints} == ks
    # Imager Pixel Spacing 0.3 mm at half scale: area in mm^2 = pixels x 0.09.
    for joint in joints:
        assert joint["overlap_mm2"] == pytest.approx(joint["overlap_px"] * 0.3 * 0.3)
    sr_file = next(o for o in result.outputs if o.kind is OutputKind.STRUCTURED_REPORT)
    groups = hd.sr.srread(sr_file.path).content.get_planar_roi_measurement_groups()
    assert len(groups) == 5
    # Joint space in mm at the detector (the fixture has Imager Pixel Spacing only).
    for joint, group in zip(joints, groups, strict=True):
        space = joint["joint_space"]
        assert space["unit"] == "mm" and space["spacing"] == "ImagerPixelSpacing"
        # An MCP joint space is a few mm at most; overlaps are a few mm deep at most.
        assert -4.0 < space["min_width"] <= space["mean_width"] < 5.0
        assert space["overlap_depth"] == pytest.approx(max(0.0, -space["min_width"]))
        region = group.roi  # placed on the radiograph, by the bones' hull or the crop
        assert region is not None and len(region.value) >= 4
        widths = [m for m in group.get_measurements() if m.name.meaning == "Joint space width"]
        assert sorted(m.value for m in widths) == pytest.approx(
            [space["min_width"], space["mean_width"]]
        )


def test_two_hands_monochrome1(models: Models, dx_both: Path, tmp_path: Path) -> None:
    with blsgan_batches(models) as batches:
        result = run_pipeline(dx_both, models, OutputSettings(), tmp_path / "out")
    assert sorted(hand.side for hand in result.hands) == ["L", "R"]
    assert [len(masks) for masks in batches] == [10]
    width = dcmread(dx_both, stop_before_pixels=True).Columns
    for hand in result.hands:
        # The patient's right hand lies on the viewer's left of a PA image.
        on_left = all(joint.x < width / 2 for joint in hand.joints)
        assert on_left == (hand.side == "R")
    assert [side for side, _ in result.result.joints()][::5] == [Side.RIGHT, Side.LEFT]
    assert len(result.outputs) == 1 + 1 + 10 * 3 + 1 + 1
    spaces = [joint.space for _, joint in result.result.joints()]
    assert all(s is not None and s.spacing == "PixelSpacing" for s in spaces)
    check_joints(result)
    check_every_output(result, dx_both)
    check_segmentation(result, dx_both)


def test_right_hand_jpeg2000(models: Models, dx_right_j2k: Path, tmp_path: Path) -> None:
    result = run_pipeline(dx_right_j2k, models, OutputSettings(), tmp_path / "out")
    assert [hand.side for hand in result.hands] == ["R"]
    assert len(result.outputs) == 19
    check_joints(result)
    check_every_output(result, dx_right_j2k)


def test_a_blank_image_has_no_hand(models: Models, blank_dx: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"^no hand found"):
        run_pipeline(blank_dx, models, OutputSettings(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_colour_image_is_refused(models: Models, atlas_image: Path, tmp_path: Path) -> None:
    dataset = make_dx(atlas_image, scale=SCALE, uid_seed="colour")
    dataset.PhotometricInterpretation = "RGB"
    dataset.SamplesPerPixel = 3
    dataset.PlanarConfiguration = 0
    path = write_dataset(dataset, tmp_path / "colour.dcm")
    with pytest.raises(PermanentError, match=r"^not a greyscale image"):
        run_pipeline(path, models, OutputSettings(), tmp_path / "out")


def test_a_non_dicom_file_is_refused(models: Models, atlas_image: Path, tmp_path: Path) -> None:
    png = tmp_path / "hand.png"
    with Image.open(atlas_image) as image:
        image.save(png)
    with pytest.raises(PermanentError, match=r"^not a DICOM file"):
        run_pipeline(png, models, OutputSettings(), tmp_path / "out")


def test_crops_are_harmonised_whatever_the_grey_scale(models: Models, dx_left: Path) -> None:
    """The same joints cut from a gamma-changed or inverted source give the same crops."""
    pixels = read_source(dx_left)[1].pixels
    hands = find_hands(pixels, models)
    size = models.segmenter.config.crop_size
    crops = cut_crops(pixels, hands, size).crops
    for crop in crops:
        assert np.allclose(np.percentile(crop, PERCENTILES), REFERENCE, atol=0.02)
    for changed in (pixels**1.6, pixels**0.6, 1.0 - pixels, 0.25 + 0.5 * pixels):
        other = cut_crops(changed, hands, size).crops
        assert np.abs(other - crops).mean() < 0.01
