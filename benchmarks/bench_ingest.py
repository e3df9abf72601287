"""C-STORE ingest rate of ``blsnode serve`` against pynetdicom's own ``storescp``.

Both receivers get the same files from dcmtk's ``storescu`` over one association on
loopback, in alternating runs: 500 small (256x256, 16-bit) and 60 large (2000x1700,
16-bit) DX instances by default. The baseline (``python -m pynetdicom storescp``) writes
each data set to a file; the node also fdatasyncs it, renames it into the spool and
fsyncs the folder before it answers (its rows are committed in groups by another
thread, and before the release is answered). The ratio node/baseline of instances per
second is the figure of merit (target >= 1.0).

    .venv/bin/python benchmarks/bench_ingest.py [--repeats 3] [--scratch-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

# Free ports, waiting for listeners and dcmtk's programs: the tests' helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from installed import blsnode_command
from loopback import free_port, stop_process, system_program, wait_for_port

DX = "1.2.840.10008.5.1.4.1.1.1.1"


@dataclass(frozen=True)
class Workload:
    """A folder of generated instances."""

    name: str
    folder: Path
    count: int
    total_bytes: int


@dataclass(frozen=True)
class Run:
    """One timed transfer."""

    receiver: str
    workload: str
    seconds: float
    count: int
    total_bytes: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.total_bytes / self.seconds / 1e6


def make_workload(name: str, folder: Path, count: int, rows: int, columns: int) -> Workload:
    """``count`` DX instances of one series with random 12-bit pixels (cached on disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.dcm"))
    if len(existing) != count:
        for path in existing:
            path.unlink()
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 4096, size=(rows, columns), dtype=np.uint16).tobytes()
        study, series = generate_uid(), generate_uid()
        for index in range(count):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID = DX
            ds.SOPInstanceUID = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.PatientName, ds.PatientID = "BENCH^INGEST", "BENCH"
            ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "HAND", "PA"
            ds.Rows, ds.Columns = rows, columns
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
            ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.PixelData = pixels
            ds.save_as(folder / f"{index:05d}.dcm", enforce_file_format=True)
    files = sorted(folder.glob("*.dcm"))
    return Workload(name, folder, len(files), sum(path.stat().st_size for path in files))


def flush_latency_ms(folder: Path, samples: int = 50) -> float:
    """Median time of the node's per-instance disk flushes (file fdatasync + directory fsync).

    The baseline never flushes, so on a busy shared disk this latency alone bounds the
    node's rate for small instances; it is printed so results can be read in context.
    """
    timings = []
    payload = os.urandom(128 * 1024)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        for index in range(samples):
            began = time.perf_counter()
            target = Path(tmp) / f"{index}.tmp"
            with target.open("wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fdatasync(handle.fileno())
            os.replace(target, Path(tmp) / f"{index}.dcm")
            directory = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
            timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


def start_baseline(port: int, scratch: Path) -> tuple[subprocess.Popen, str, Path]:
    out = scratch / "baseline"
    out.mkdir()
    command = [sys.executable, "-m", "pynetdicom", "storescp", str(port), "-od", str(out), "-q"]
    return subprocess.Popen(command), "STORESCP", out


def start_node(port: int, scratch: Path) -> tuple[subprocess.Popen, str, Path]:
    data = scratch / "node"
    config = scratch / "node.toml"
    config.write_text(
        f'[network]\nhost = "127.0.0.1"\nport = {port}\nae_title = "BLSNODE"\n'
        f"[http]\nport = {free_port()}\n[worker]\nembedded = false\n"
        '[logging]\nlevel = "WARNING"\n'
    )
    command = blsnode_command("--config", config, "--data-dir", data, "serve")
    return subprocess.Popen(command, cwd=scratch), "BLSNODE", data


def stored_count(receiver: str, output: Path) -> int:
    if receiver == "baseline":
        return sum(1 for _ in output.iterdir())
    return sum(1 for _ in (output / "spool").rglob("*.dcm"))


def timed_run(receiver: str, workload: Workload, storescu: str, scratch_root: Path) -> Run:
    """Start a fresh receiver, send the workload once, check everything arrived, stop it."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=scratch_root) as tmp:
        scratch = Path(tmp).resolve()  # the node runs in it: relative paths would break
        port = free_port()
        start = start_baseline if receiver == "baseline" else start_node
        process, ae_title, output = start(port, scratch)
        try:
            wait_for_port(port, 60.0, process)
            command = [storescu, "-aec", ae_title, "127.0.0.1", str(port)]
            command += ["--scan-directories", str(workload.folder)]
            began = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - began
            if done.returncode != 0 or "Store Failed" in done.stderr:
                raise RuntimeError(f"storescu failed against {receiver}: {done.stderr[-2000:]}")
            arrived = stored_count(receiver, output)
            if arrived != workload.count:
                raise RuntimeError(f"{receiver} stored {arrived} of {workload.count}")
        finally:
            stop_process(process, 30)
    return Run(receiver, workload.name, seconds, workload.count, workload.total_bytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=500, help="number of small instances")
    parser.add_argument("--large", type=int, default=60, help="number of large instances")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per receiver")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("runs/bench_ingest"), help="generated files"
    )
    parser.add_argument(
        "--scratch-dir",
        type=Path,
        default=None,
        help="where the receivers store (default: beside the generated files); a tmpfs "
        "such as /dev/shm takes the disk flushes out and leaves the software path",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.small < 1 or args.large < 1:
        parser.error("counts and repeats must be positive")

    storescu = system_program("storescu")
    workloads = [
        make_workload("small", args.work_dir / "small", args.small, 256, 256),
        make_workload("large", args.work_dir / "large", args.large, 2000, 1700),
    ]
    scratch_root = args.scratch_dir or args.work_dir
    scratch_root.mkdir(parents=True, exist_ok=True)
    flush_before = flush_latency_ms(scratch_root)
    results: dict[str, dict[str, float]] = {}
    for workload in workloads:
        runs: dict[str, list[Run]] = {"baseline": [], "node": []}
        for repeat in range(args.repeats):
            order = ("baseline", "node") if repeat % 2 == 0 else ("node", "baseline")
            for receiver in order:
                runs[receiver].append(timed_run(receiver, workload, storescu, scratch_root))
        summary: dict[str, float] = {}
        for receiver, measured in runs.items():
            summary[f"{receiver}_instances_per_s"] = statistics.median(
                r.per_second for r in measured
            )
            summary[f"{receiver}_mb_per_s"] = statistics.median(r.mb_per_second for r in measured)
        summary["ratio"] = summary["node_instances_per_s"] / summary["baseline_instances_per_s"]
        summary["instances"] = workload.count
        summary["megabytes"] = workload.total_bytes / 1e6
        results[workload.name] = summary

    flush_ms = (flush_before + flush_latency_ms(scratch_root)) / 2
    if args.json:
        load = os.getloadavg()[0]
        print(
            json.dumps(
                {
                    "repeats": args.repeats,
                    "flush_ms": flush_ms,
                    "load_average": load,
                    "results": results,
                }
            )
        )
    else:
        print(f"C-STORE ingest by dcmtk storescu, median of {args.repeats} alternating runs")
        print(f"disk flush (fdatasync + directory fsync of 128 KiB): {flush_ms:.2f} ms median")
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
        print(f"{'workload':24} {'baseline':>18} {'blsnode':>18} {'ratio':>7}")
        for name, s in results.items():
            label = f"{name} ({s['instances']:.0f} x {s['megabytes'] / s['instances']:.2f} MB)"
            base = f"{s['baseline_instances_per_s']:.1f}/s {s['baseline_mb_per_s']:.0f} MB/s"
            node = f"{s['node_instances_per_s']:.1f}/s {s['node_mb_per_s']:.0f} MB/s"
            print(f"{label:24} {base:>18} {node:>18} {s['ratio']:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
