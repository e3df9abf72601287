"""Sending one radiograph's results: one association per object against one per batch.

The 18 SEG, SC and SR objects of one full-size atlas hand (written by the worker's
pipeline: the shipped localiser and segmenter, a BLS-GAN of the ``cpu`` preset's
architecture with random weights) are sent by ``dicom_node.send.scu`` to a real Orthanc and
to dcmtk's ``storescp``, baseline and ours alternating:

- ``baseline``: ``store_file`` for each object, a new association each (how dispatch
  worked before batching);
- ``ours``: ``store_files`` with all of them, one association (``dispatch.batch_size``);
- ``storescu``: dcmtk's ``storescu`` sending the same files on one association, for
  reference (what the destination itself costs per object; includes starting it).

The clock stops at the last C-STORE response; Orthanc answers once it has stored the
instance, ``storescp`` once it has written the file. Every run sends fresh copies with
new SOP Instance UIDs, so no destination takes a shortcut for an instance it already has.
This isolates the sending; ``bench_e2e.py --baseline-batch-size 1`` measures the same
change end to end (Celery messages, database, polling Orthanc).

    .venv/bin/python benchmarks/bench_dispatch.py [--repeats 5] [--image 3149] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCHMARKS)]

from bench_e2e import SHARED_DATA, promote_preset_model  # noqa: E402
from dicom_factory import make_dx, write_dataset  # noqa: E402
from node_testing import dcmtk  # noqa: E402
from orthanc_server import running_orthanc  # noqa: E402
from peers import running_storescp  # noqa: E402
from pydicom import dcmread  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from dicom_node.send.scu import StoreAttempt, store_file, store_files  # noqa: E402
from dicom_node.settings import DestinationSettings, Settings, load_settings  # noqa: E402


def radiograph_results(folder: Path, image: str, scale: float, preset: str) -> list[Path]:
    """The derived objects of one atlas hand, written by the worker's pipeline."""
    from worker.offline import process_file

    registry = promote_preset_model(folder / "models" / "registry", preset)
    settings = load_settings(data_dir=folder / "data", models={"registry_dir": str(registry)})
    atlas = SHARED_DATA / "hand_radiographs" / "images" / f"{image}.jpg"
    source = write_dataset(
        make_dx(atlas, scale=scale, uid_seed="bench-dispatch"), folder / "dx.dcm"
    )
    report = process_file(settings, source, folder / "outputs")
    return [Path(output["path"]) for output in report["outputs"]]


def fresh_copies(paths: list[Path], folder: Path) -> list[Path]:
    """Copies of ``paths`` under new SOP Instance UIDs."""
    folder.mkdir(parents=True)
    copies = []
    for number, path in enumerate(paths):
        ds = dcmread(path)
        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        copy = folder / f"{number:02d}.dcm"
        ds.save_as(copy, enforce_file_format=True)
        copies.append(copy)
    return copies


def send(
    settings: Settings, destination: DestinationSettings, paths: list[Path], batched: bool
) -> float:
    """Seconds to send ``paths``; raises if any is not stored."""
    clock = time.perf_counter()
    if batched:
        attempts = store_files(settings, destination, paths)
    else:
        attempts = [store_file(settings, destination, path) for path in paths]
    seconds = time.perf_counter() - clock
    failed: list[StoreAttempt] = [attempt for attempt in attempts if not attempt.stored]
    if failed:
        raise RuntimeError(f"{len(failed)} objects not stored at {destination.name}: {failed[0]}")
    return seconds


def send_with_storescu(destination: DestinationSettings, paths: list[Path]) -> float:
    """Seconds for dcmtk's ``storescu`` to send ``paths`` on one association."""
    command = [
        dcmtk("storescu"), "-R", "-aet", "BLSNODE", "-aec", destination.ae_title,
        destination.host, str(destination.port), *map(str, paths),
    ]  # fmt: skip
    clock = time.perf_counter()
    done = subprocess.run(command, capture_output=True, timeout=300)
    seconds = time.perf_counter() - clock
    if done.returncode != 0:
        raise RuntimeError(f"storescu failed: {done.stderr.decode(errors='replace')}")
    return seconds


def measure(
    folder: Path, *, image: str = "3149", scale: float = 1.0, preset: str = "cpu",
    repeats: int = 5,
) -> dict[str, Any]:  # fmt: skip
    """Median seconds per radiograph for each destination and way of sending."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    results = radiograph_results(folder / "radiograph", image, scale, preset)
    settings = load_settings(data_dir=folder / "node", network={"ae_title": "BLSNODE"})
    report: dict[str, Any] = {"image": image, "scale": scale, "objects": len(results)}
    with (
        running_orthanc(folder / "orthanc") as pacs,
        running_storescp(folder / "storescp") as viewer,
    ):
        destinations = {
            "orthanc": DestinationSettings(
                name="pacs", ae_title=pacs.ae_title, host="127.0.0.1", port=pacs.dicom_port
            ),
            "storescp": DestinationSettings(
                name="viewer", ae_title=viewer.ae_title, host="127.0.0.1", port=viewer.port
            ),
        }
        for name, destination in destinations.items():
            times: dict[str, list[float]] = {"baseline": [], "ours": [], "storescu": []}
            for repeat in range(repeats):
                for way in times:
                    copies = fresh_copies(results, folder / "copies" / f"{name}-{way}-{repeat}")
                    if way == "storescu":
                        times[way].append(send_with_storescu(destination, copies))
                    else:
                        times[way].append(send(settings, destination, copies, way == "ours"))
            baseline = statistics.median(times["baseline"])
            ours = statistics.median(times["ours"])
            report[name] = {
                "baseline_s": baseline,
                "ours_s": ours,
                "storescu_s": statistics.median(times["storescu"]),
                "baseline_over_ours": baseline / ours,
                "runs": times,
            }
    return report


def main() -> None:
    """Parse options, run, print a table (or one JSON object)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="3149", help="atlas image id")
    parser.add_argument("--scale", type=float, default=1.0, help="down-sampling of the atlas")
    parser.add_argument("--preset", default="cpu", help="BLS-GAN architecture (random weights)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each way of sending")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args()
    if options.repeats < 1:
        parser.error(f"--repeats must be at least 1, not {options.repeats}")
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        report = measure(
            Path(folder), image=options.image, scale=options.scale, preset=options.preset,
            repeats=options.repeats,
        )  # fmt: skip
    if options.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['objects']} results of atlas hand {report['image']}, median of {options.repeats}"
    )
    print(
        f"{'destination':12} {'baseline s':>11} {'ours s':>8} {'baseline/ours':>14} "
        f"{'storescu s':>11}"
    )
    for name in ("orthanc", "storescp"):
        row = report[name]
        print(
            f"{name:12} {row['baseline_s']:11.3f} {row['ours_s']:8.3f} "
            f"{row['baseline_over_ours']:13.2f}x {row['storescu_s']:11.3f}"
        )


if __name__ == "__main__":
    main()
