"""End-to-end latency: from the C-STORE into ``blsnode serve`` until the last result is in Orthanc.

The setting of ``tests/e2e/test_e2e_pipeline.py``, reused: a real Orthanc as the PACS, a
real ``redis-server``, and ``blsnode serve`` with its embedded Celery worker on the CPU.
Each radiograph (a full-size atlas hand re-encoded as DX by ``tests/dicom_factory.py``) is
sent by C-STORE straight to the node; the clock stops when Orthanc lists every SEG, SC
and SR the job produced. The node's own timestamps split the time into stages:

- ``store``: the C-STORE round trip (transfer, fsync, database row, response);
- ``queue``: from the response until a worker starts the job (publish, broker, pickup);
- ``pipeline``: the job (decode, locate, segment, BLS-GAN, build and write the outputs);
- ``dispatch``: from the job's end until the last result is in Orthanc (the results of
  one destination on one association, ``dispatch.batch_size`` at a time).

The first radiograph also loads the models (``cold``); the others are ``warm``. The
BLS-GAN has the architecture of a training preset (default ``cpu``, the shipped size)
with random weights, so the compute is real; ``--registry`` uses a registry's promoted
model instead. The localiser and the segmenter are the shipped weights.

    .venv/bin/python benchmarks/bench_e2e.py [--images 3149,3143,3146] [--repeats 1] [--json]

``--baseline-batch-size 1`` first runs the same radiographs with one association per
result (how dispatch worked before batching) and prints the ratio baseline / ours of
the warm medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS = REPO_ROOT / "tests"
# The end-to-end tests' helpers (peers, node process, DICOM factory) run the benchmark.
sys.path[:0] = [str(TESTS / name) for name in ("", "e2e", "test_dicom_node", "test_worker")]
# The real hand radiographs (as the tests find them).
SHARED_DATA = Path(os.environ.get("BLSNODE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

from dicom_factory import make_dx, write_dataset  # noqa: E402
from e2e_node import ServedNode, destination, served_node  # noqa: E402
from loopback import wait_until  # noqa: E402
from node_testing import store_datasets  # noqa: E402
from orthanc_server import Orthanc, running_orthanc  # noqa: E402
from peers import running_redis  # noqa: E402
from pydicom import dcmread  # noqa: E402

from blsgan_core.model import BLSGANModel, save_model  # noqa: E402
from blsgan_core.registry import ModelRegistry  # noqa: E402
from dicom_node.db import Job, JobState  # noqa: E402

DEFAULT_IMAGES = ("3149", "3143", "3146")
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Timing:
    """One radiograph through the node, in seconds."""

    image: str
    outputs: int
    store: float
    queue: float
    pipeline: float
    dispatch: float
    total: float


def promote_preset_model(registry_dir: Path, preset: str) -> Path:
    """A registry with a randomly initialised BLS-GAN of ``preset``'s architecture promoted."""
    from trainer.config import load_preset

    config = load_preset(preset).model.blsgan_config()
    checkpoint = registry_dir.parent / f"{preset}-random.pt"
    registry_dir.mkdir(parents=True, exist_ok=True)
    save_model(checkpoint, BLSGANModel(config), f"0.0.0-{preset}-random")
    registry = ModelRegistry(registry_dir)
    registry.register(checkpoint, f"{preset}-random")
    registry.promote(f"{preset}-random")
    return registry_dir


@contextmanager
def hospital(
    folder: Path, registry_dir: Path, batch_size: int | None = None
) -> Iterator[tuple[ServedNode, Orthanc]]:
    """Orthanc, Redis and ``blsnode serve`` (embedded worker) sending results to Orthanc."""
    dispatch = {} if batch_size is None else {"batch_size": batch_size}
    with (
        running_orthanc(folder / "orthanc") as pacs,
        running_redis(folder / "redis") as redis_url,
        served_node(
            folder / "node",
            broker={"url": redis_url},
            worker={"embedded": True},
            models={"registry_dir": str(registry_dir)},
            destinations=[destination("pacs", pacs.ae_title, pacs.dicom_port)],
            dispatch=dispatch,
        ) as node,
    ):
        yield node, pacs


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _results_in_orthanc(pacs: Orthanc, study_instance_uid: str) -> set[str]:
    """SOP Instance UIDs Orthanc holds in a study."""
    query = {"Level": "Instance", "Query": {"StudyInstanceUID": study_instance_uid}, "Expand": True}
    return {
        item["MainDicomTags"]["SOPInstanceUID"] for item in pacs.send("POST", "/tools/find", query)
    }


def measure_one(node: ServedNode, pacs: Orthanc, image: str, source: Path) -> Timing:
    """Send ``source``, wait until Orthanc holds all its results; the stages' times."""
    header = dcmread(source, stop_before_pixels=True)
    uid, study = str(header.SOPInstanceUID), str(header.StudyInstanceUID)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    [status] = store_datasets(node.port, [source], calling="MODALITY")
    if status != 0:
        raise RuntimeError(f"C-STORE of {source} answered 0x{status:04X}")
    acknowledged = datetime.now(UTC)

    def finished() -> tuple[Job, set[str]] | None:
        found = node.finished_job(uid)
        if found is None:
            return None
        job, outputs = found
        if job.state is JobState.FAILED:
            raise RuntimeError(f"job of {image} failed: {job.reason}")
        return job, {output.sop_instance_uid for output in outputs}

    job, outputs = wait_until(finished, TIMEOUT_S, interval_s=0.05, what=f"{image} processed")
    wait_until(
        lambda: outputs <= _results_in_orthanc(pacs, study),
        TIMEOUT_S,
        interval_s=0.05,
        what=f"{image} results in Orthanc",
    )
    total = time.perf_counter() - clock
    if job.started_at is None or job.finished_at is None:
        raise RuntimeError(f"job {job.id} is done without start and end times")
    return Timing(
        image=image,
        outputs=len(outputs),
        store=_seconds(acknowledged, started),
        queue=_seconds(job.started_at, acknowledged),
        pipeline=_seconds(job.finished_at, job.started_at),
        dispatch=total - _seconds(job.finished_at, started),
        total=total,
    )


def radiographs(
    images: list[str], folder: Path, scale: float, repeats: int
) -> list[tuple[str, Path]]:
    """DX files of the atlas ``images`` (each ``repeats`` times, new UIDs every time)."""
    atlas = SHARED_DATA / "hand_radiographs" / "images"
    files = []
    for repeat in range(repeats):
        for image in images:
            dataset = make_dx(atlas / f"{image}.jpg", scale=scale, uid_seed=f"bench-{repeat}")
            files.append((image, write_dataset(dataset, folder / f"{image}-{repeat}.dcm")))
    return files


def measure(
    images: list[str], folder: Path, *, scale: float = 1.0, repeats: int = 1,
    preset: str = "cpu", registry: Path | None = None, batch_size: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Time every radiograph; the first includes loading the models (``cold``)."""
    registry_dir = registry or promote_preset_model(folder / "models" / "registry", preset)
    files = radiographs(images, folder / "radiographs", scale, repeats)
    with hospital(folder / "hospital", registry_dir, batch_size) as (node, pacs):
        timings = [measure_one(node, pacs, image, path) for image, path in files]
        used_batch_size = node.settings.dispatch.batch_size
    warm = timings[1:] or timings
    return {
        "model": str(registry) if registry else f"{preset} architecture, random weights",
        "scale": scale,
        "batch_size": used_batch_size,
        "cold": asdict(timings[0]),
        "warm": [asdict(t) for t in warm],
        "warm_median": {
            stage: statistics.median(getattr(t, stage) for t in warm)
            for stage in ("store", "queue", "pipeline", "dispatch", "total")
        },
    }


def _table(report: dict[str, Any]) -> str:
    rows = [("cold", report["cold"]), *(("warm", row) for row in report["warm"])]
    lines = [
        f"model: {report['model']}, scale {report['scale']}, "
        f"dispatch.batch_size {report['batch_size']}",
        f"{'run':5} {'image':6} {'outputs':>7} {'store':>7} {'queue':>7} {'pipeline':>9} "
        f"{'dispatch':>9} {'total':>7}",
    ]
    for run, row in rows:
        lines.append(
            f"{run:5} {row['image']:6} {row['outputs']:7d} {row['store']:7.2f} {row['queue']:7.2f} "
            f"{row['pipeline']:9.2f} {row['dispatch']:9.2f} {row['total']:7.2f}"
        )
    median = report["warm_median"]
    lines.append(
        f"{'warm median':12} {'':>7} {median['store']:7.2f} {median['queue']:7.2f} "
        f"{median['pipeline']:9.2f} {median['dispatch']:9.2f} {median['total']:7.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    """Parse options, run, print a table (or one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=",".join(DEFAULT_IMAGES), help="atlas image ids")
    parser.add_argument("--repeats", type=int, default=1, help="times each image is sent")
    parser.add_argument("--scale", type=float, default=1.0, help="down-sampling of the atlas")
    parser.add_argument("--preset", default="cpu", help="BLS-GAN architecture (random weights)")
    parser.add_argument("--registry", type=Path, help="a registry whose promoted model to use")
    parser.add_argument(
        "--baseline-batch-size",
        type=int,
        help="also run with this dispatch.batch_size first (1: one association per result)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args()
    if options.repeats < 1:
        parser.error(f"--repeats must be at least 1, not {options.repeats}")
    if options.baseline_batch_size is not None and options.baseline_batch_size < 1:
        parser.error(f"--baseline-batch-size must be at least 1, not {options.baseline_batch_size}")
    images = [image.strip() for image in options.images.split(",") if image.strip()]
    runs = [("baseline", options.baseline_batch_size)] if options.baseline_batch_size else []
    reports = {}
    for name, batch_size in [*runs, ("ours", None)]:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as folder:
            reports[name] = measure(
                images, Path(folder), scale=options.scale, repeats=options.repeats,
                preset=options.preset, registry=options.registry, batch_size=batch_size,
            )  # fmt: skip
    if "baseline" in reports:
        reports["ratio_baseline_over_ours"] = {
            stage: reports["baseline"]["warm_median"][stage] / reports["ours"]["warm_median"][stage]
            for stage in ("dispatch", "total")
        }
    if options.json:
        print(json.dumps(reports if runs else reports["ours"], indent=2))
        return
    for name in ("baseline", "ours"):
        if name in reports:
            print(f"{name}:\n{_table(reports[name])}\n")
    if "ratio_baseline_over_ours" in reports:
        ratio = reports["ratio_baseline_over_ours"]
        print(
            f"warm median, baseline / ours: dispatch {ratio['dispatch']:.2f}x, "
            f"total {ratio['total']:.2f}x"
        )


if __name__ == "__main__":
    main()
