"""One radiograph from file to written DICOM outputs: the plain function behind the tasks.

Stages, each timed (``PipelineResult.timings_s``):

- ``decode``: read the DICOM file, decode its pixels to display grey values
  (``dicom_node.pixels.load_radiograph``);
- ``locate``: find the hands and their five MCP joints (``blsgan_core.joints.locate``);
- ``segment``: cut the 256 x 256 joint crops, harmonise their grey values onto the
  training data's statistics (``blsgan_core.harmonise``: the same crops go to both
  networks, whatever the source's window, VOI LUT, bit depth or polarity) and segment
  both bones of every crop in one batched pass (``blsgan_core.crops``,
  ``blsgan_core.segment``);
- ``separate``: BLS-GAN on all joints of the radiograph in ONE batch
  (``blsgan_core.inference.separate``), given the segmenter's masks widened towards the
  other bone (``blsgan_core.segment.predict.separation_masks``; the outlines shown and
  measured stay at 0.5);
- ``encode``: masks back onto the source grid, reconstruction metrics, the result
  dataclasses of ``dicom_node.derived`` and the SEG/SC/SR files (``write_outputs``).

What cannot be processed raises ``PermanentError`` with a reason a person can act on
("no hand found: ...", "not a greyscale image: ..."); anything else that escapes is
either transient (I/O) or a bug, and the caller decides.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from blsgan_core.crops import CropGeometry, crop_joints, crop_side, uncrop_mask
from blsgan_core.harmonise import harmonise_batch
from blsgan_core.inference import SeparationResult, separate
from blsgan_core.joints import Hand, NoHandFoundError, locate
from blsgan_core.metrics import image_metrics
from blsgan_core.segment import node_masks
from dicom_node.derived.model import (
    HandResult,
    Joint,
    JointResult,
    RadiographResult,
    ReconstructionError,
    Side,
    SpacingSource,
)
from dicom_node.derived.write import WrittenOutput, write_outputs
from dicom_node.pixels import Radiograph, RadiographError, load_radiograph
from dicom_node.receive.header import InstanceIdentity, read_file_header
from dicom_node.receive.wire import DatasetTooLargeError, MalformedDatasetError
from dicom_node.settings import OutputSettings, Settings, StorageSettings, WorkerSettings
from worker.failures import PermanentError
from worker.joint_layers import StoredJoint
from worker.joint_space import (
    FollowUp,
    crop_scale,
    joint_change,
    joint_space,
    registered_change,
    spacing_source,
)
from worker.models import Models

logger = logging.getLogger(__name__)

STAGES = ("decode", "locate", "segment", "separate", "encode")
# PSNR of a perfect reconstruction is infinite; DICOM and JSON need a number. 100 dB is
# an MSE of 1e-10, far below the 8-bit quantisation of any display.
MAX_PSNR_DB = 100.0
NO_BONE = "the segmenter found no bone in the joint crop"


@dataclass
class StageTimer:
    """Wall-clock and CPU seconds per stage, in the order the stages ran.

    CPU time (all threads of the process) is what a stage costs whatever else the
    machine runs; wall time is what the sender waits.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (added to an earlier stage of that name)."""
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.cpu_seconds[name] = (
                self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu_started
            )

    def report(self, seconds: dict[str, float]) -> dict[str, float]:
        """The stages of ``seconds`` (wall or CPU) and their sum as ``total``."""
        return {**seconds, "total": sum(seconds.values())}


@dataclass(frozen=True)
class JointCrops:
    """Crops of the joints of every hand, as one batch, and where each came from."""

    crops: np.ndarray  # (N, S, S) float32 in [0, 1], harmonised
    geometries: tuple[CropGeometry, ...]
    sides: tuple[str, ...]  # hand side of each crop
    names: tuple[str, ...]  # joint name of each crop

    def __len__(self) -> int:
        return len(self.geometries)

    def subset(self, indices: list[int]) -> JointCrops:
        """The crops at ``indices``, in that order."""
        return JointCrops(
            self.crops[indices],
            tuple(self.geometries[i] for i in indices),
            tuple(self.sides[i] for i in indices),
            tuple(self.names[i] for i in indices),
        )


@dataclass(frozen=True)
class PipelineResult:
    """What one radiograph produced: results, files written, stage times."""

    source_sop_instance_uid: str
    result: RadiographResult
    hands: tuple[Hand, ...]
    skipped: tuple[dict[str, str], ...]
    outputs: tuple[WrittenOutput, ...]
    timings_s: dict[str, float]
    cpu_s: dict[str, float]
    pixel_spacing_mm: tuple[float, float] | None
    spacing_source: SpacingSource
    # Each joint's layers, masks and crop scale, keyed (side, joint): a later baseline.
    joint_layers: dict[tuple[str, str], StoredJoint] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON: hands and joints found, k per joint, outputs, timings."""
        located = {(hand.side, joint.name): joint for hand in self.hands for joint in hand.joints}
        scores = {hand.side: hand.score for hand in self.hands}
        hands = []
        for hand in self.result.hands:
            joints = []
            for joint in hand.joints:
                point = located[(hand.side.value, joint.joint.value)]
                area_mm2 = (
                    joint.overlap_area_mm2(self.pixel_spacing_mm)
                    if self.pixel_spacing_mm is not None
                    else None
                )
                joints.append(
                    point.as_dict()
                    | {
                        "k": joint.k,
                        "overlap_px": joint.overlap_area_px,
                        "overlap_mm2": area_mm2,
                        "mse": joint.error.mse,
                        "ssim": joint.error.ssim,
                        "psnr": joint.error.psnr,
                        "joint_space": asdict(joint.space) if joint.space is not None else None,
                        "joint_space_change": (
                            asdict(joint.change) if joint.change is not None else None
                        ),
                    }
                )
            hands.append(
                {"side": hand.side.value, "score": scores[hand.side.value], "joints": joints}
            )
        return {
            "source_sop_instance_uid": self.source_sop_instance_uid,
            "model": {"name": self.result.model.name, "version": self.result.model.version},
            "hands": hands,
            "skipped_joints": list(self.skipped),
            "outputs": [output.as_dict() for output in self.outputs],
            "timings_s": dict(self.timings_s),
            "cpu_s": dict(self.cpu_s),
        }


@dataclass(frozen=True)
class SourceLimits:
    """How much a source may claim before it is refused (see the settings' comments)."""

    max_dataset_bytes: int = StorageSettings().max_dataset_bytes
    max_image_bytes: int = WorkerSettings().max_image_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceLimits:
        """The limits of ``settings``."""
        return cls(settings.storage.max_dataset_bytes, settings.worker.max_image_bytes)


def _dataset_identity(dataset: Dataset) -> InstanceIdentity:
    return InstanceIdentity(
        *(
            str(dataset.get(keyword, ""))
            for keyword in (
                "SOPClassUID",
                "SOPInstanceUID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
            )
        )
    )


def _check_booked(what: str, booked: InstanceIdentity, found: InstanceIdentity) -> None:
    differing = booked.differences(found)
    if differing:
        raise PermanentError(
            f"the {what} of the spooled file differ from those booked at ingest: "
            f"{', '.join(differing)}; not processed"
        )


def read_source(
    path: Path, limits: SourceLimits | None = None, booked: InstanceIdentity | None = None
) -> tuple[Dataset, Radiograph]:
    """The source's dataset (for the derived objects' headers) and its decoded pixels.

    The file is first checked as the listener checks a received data set (tags rising
    strictly, whole elements, the size bound), so no attribute has two values and this
    parse reads what the listener booked; with ``booked``, its UIDs must also be the
    booked ones. The image's claimed size is checked before any pixel is decoded.
    """
    limits = limits or SourceLimits()
    try:
        checked = read_file_header(path, limits.max_dataset_bytes)
    except (MalformedDatasetError, DatasetTooLargeError) as error:
        raise PermanentError(f"not a DICOM file the node accepts: {path.name}: {error}") from error
    if booked is not None:
        _check_booked("UIDs in the header", booked, checked.header.identity)
    try:
        dataset = dcmread(path)
    except InvalidDicomError as error:
        raise PermanentError(f"not a DICOM file: {path.name}: {error}") from error
    if not dataset.get("SOPInstanceUID"):
        raise PermanentError(f"{path.name} has no SOP Instance UID")
    if booked is not None:
        _check_booked("UIDs as read in full", booked, _dataset_identity(dataset))
    try:
        radiograph = load_radiograph(dataset, limits.max_image_bytes)
    except RadiographError as error:
        raise PermanentError(str(error)) from error
    return dataset, radiograph


def find_hands(pixels: np.ndarray, models: Models) -> tuple[Hand, ...]:
    """The hands of the radiograph, at most one per side (the more confident one wins)."""
    try:
        hands = locate(pixels, models.localiser)
    except NoHandFoundError as error:
        raise PermanentError(str(error)) from error
    except ValueError as error:  # e.g. an image too small to show a hand
        raise PermanentError(f"no hand found: {error}") from error
    best: dict[str, Hand] = {}
    for hand in hands:
        other = best.get(hand.side)
        if other is not None:
            scores = sorted((hand.score, other.score))
            logger.warning(
                "two %s hands found; keeping the one with score %.2f, dropping %.2f",
                hand.side,
                scores[1],
                scores[0],
            )
        if other is None or hand.score > other.score:
            best[hand.side] = hand
    # Left to right in the image, as the localiser returns them.
    return tuple(hand for hand in hands if best[hand.side] is hand)


def cut_crops(pixels: np.ndarray, hands: tuple[Hand, ...], size: int) -> JointCrops:
    """Every joint's crop, finger up, sized by its hand (1.2 x the MCP2-MCP3 distance),
    harmonised onto the training data's grey statistics."""
    crops, geometries, sides, names = [], [], [], []
    for hand in hands:
        hand_crops, hand_geometries = crop_joints(
            pixels, hand.joints, crop_side(hand.mcp2_mcp3_px), size
        )
        crops.append(hand_crops)
        geometries += hand_geometries
        sides += [hand.side] * len(hand.joints)
        names += [joint.name for joint in hand.joints]
    batch = harmonise_batch(np.concatenate(crops))
    return JointCrops(batch, tuple(geometries), tuple(sides), tuple(names))


def joint_result(
    index: int,
    joints: JointCrops,
    masks: np.ndarray,
    separation: SeparationResult,
    radiograph: Radiograph,
    followup: FollowUp,
) -> tuple[JointResult, StoredJoint]:
    """One joint's masks on the source grid, its layers, k, reconstruction error and JSW.

    Eq. 1 can leave [0, 1] where a generated layer is darker than k allows; the
    reconstruction is clipped to grey values before it is shown and measured. With the
    prior's stored layers, the change since then is also found by registering them onto
    this joint's layers; the layers, masks and crop scale come back for storing.
    """
    crop, geometry = joints.crops[index], joints.geometries[index]
    upper, lower = masks[index]
    # C order: the networks may hand back channels-last tensors.
    reconstruction = np.ascontiguousarray(
        np.clip(separation.reconstruction[index, 0].numpy(), 0.0, 1.0)
    )
    layers = np.ascontiguousarray(np.clip(separation.layers[index].numpy(), 0.0, 1.0))
    metrics = image_metrics(reconstruction, crop, upper | lower)
    psnr = metrics["psnr"] if math.isfinite(metrics["psnr"]) else MAX_PSNR_DB
    shape = radiograph.shape
    space = joint_space(
        upper,
        lower,
        geometry,
        radiograph.pixel_spacing_mm,
        radiograph.spacing_attribute,
        one_region_each=True,  # node_masks kept each bone's largest region
    )
    scale, _, _ = crop_scale(geometry, radiograph.pixel_spacing_mm, radiograph.spacing_attribute)
    key = (joints.sides[index], joints.names[index])
    prior = followup.priors.get(key)
    stored = StoredJoint(layers, np.stack([upper, lower]), scale)
    registered = registered_change(followup.prior_layers.get(key), stored) if prior else None
    result = JointResult(
        joint=Joint(joints.names[index]),
        upper_mask=uncrop_mask(upper, geometry, shape),
        lower_mask=uncrop_mask(lower, geometry, shape),
        crop=crop,
        upper_layer=layers[0],
        lower_layer=layers[1],
        reconstruction=reconstruction,
        k=float(separation.k[index]),
        error=ReconstructionError(metrics["mse"], metrics["ssim"], min(psnr, MAX_PSNR_DB)),
        space=space,
        change=joint_change(space, prior, followup.study_date, registered),
        # blsgan_core puts pixel centres at integers, DICOM at index + 0.5.
        crop_corners=geometry.corners + 0.5,
    )
    return result, stored


def run_pipeline(
    source: Path,
    models: Models | Callable[[], Models],
    outputs: OutputSettings,
    folder: Path,
    limits: SourceLimits | None = None,
    booked: InstanceIdentity | None = None,
    followup: FollowUp | None = None,
) -> PipelineResult:
    """Process the radiograph at ``source`` and write its SEG, SC, SR and GSPS into ``folder``.

    ``models`` may be a function that loads them: it is called after the source decoded,
    so a file that cannot be processed never costs the models' memory. ``limits`` and
    ``booked`` are checked by ``read_source``. ``followup`` holds the patient's earlier
    joints: each joint measured on the same scale then reports its change in joint
    space width.

    Raises
    ------
    PermanentError
        Not a DICOM greyscale radiograph, larger than the limits, other UIDs than
        booked, no hand found, no bone segmented at any joint.
    """
    timer = StageTimer()
    with timer.stage("decode"):
        dataset, radiograph = read_source(Path(source), limits, booked)
    if callable(models):
        models = models()
    pixels = radiograph.pixels
    with torch.inference_mode():
        with timer.stage("locate"):
            hands = find_hands(pixels, models)
        with timer.stage("segment"):
            joints = cut_crops(pixels, hands, models.segmenter.config.crop_size)
            segmented = node_masks(joints.crops, models.segmenter)
        masks = segmented.outlines
        # A crop without any bone has nothing to separate (and no region to measure).
        kept = [i for i in range(len(joints)) if masks[i].any()]
        skipped = tuple(
            {"side": joints.sides[i], "joint": joints.names[i], "reason": NO_BONE}
            for i in range(len(joints))
            if i not in kept
        )
        if not kept:
            raise PermanentError(f"no bone found: {NO_BONE} at any MCP joint")
        joints, masks = joints.subset(kept), masks[kept]
        with timer.stage("separate"):
            separation = separate(
                joints.crops, segmented.for_separation[kept], models.blsgan, device=models.device
            )
    with timer.stage("encode"):
        per_side: dict[str, list[JointResult]] = {}
        kept_layers: dict[tuple[str, str], StoredJoint] = {}
        for index in range(len(joints)):
            found, stored = joint_result(
                index, joints, masks, separation, radiograph, followup or FollowUp()
            )
            per_side.setdefault(joints.sides[index], []).append(found)
            kept_layers[(joints.sides[index], joints.names[index])] = stored
        result = RadiographResult(
            models.info,
            tuple(HandResult(Side(side), tuple(found)) for side, found in per_side.items()),
        )
        written = write_outputs(dataset, result, outputs, folder)
    timings = timer.report(timer.seconds)
    logger.info(
        "processed %s: %d hands, %d joints in %.2f s",
        dataset.SOPInstanceUID,
        len(result.hands),
        len(joints),
        timings["total"],
        extra={"sop_instance_uid": str(dataset.SOPInstanceUID)},
    )
    return PipelineResult(
        source_sop_instance_uid=str(dataset.SOPInstanceUID),
        result=result,
        hands=hands,
        skipped=skipped,
        outputs=tuple(written),
        timings_s=timings,
        cpu_s=timer.report(timer.cpu_seconds),
        pixel_spacing_mm=radiograph.pixel_spacing_mm,
        spacing_source=spacing_source(radiograph.spacing_attribute),
        joint_layers=kept_layers,
    )
