"""Worker pipeline on CPU: latency per radiograph from file to written outputs, and memory.

    .venv/bin/python benchmarks/bench_pipeline.py --threads 2 --runs 5

Part 1 runs ``worker.pipeline.run_pipeline`` in this process on DX files made from a real
atlas hand at full resolution (``tests/dicom_factory.py``): one hand (MONOCHROME2, 12
bits) and two hands (MONOCHROME1, 14 bits). It prints the median time of every stage
(decode, locate, segment, separate, encode) over ``--runs`` runs after one warm-up, the
total against the target (1.5 s for one hand on 2 cores), and the ratio to the reference:
the published BLS-GAN implementation needs about 1.9 s for the five joints of one hand
(model alone, no decoding, localisation or DICOM).

Part 2 starts a real ``blsnode worker`` (solo pool, filesystem broker) in a child
process, gives it ``--jobs`` jobs, and reads its peak resident memory (``VmHWM``) before
stopping it (target: under 1.5 GB).

OpenMP threads wait passively, as in a worker (``worker/openmp.py``); set
``OMP_WAIT_POLICY=ACTIVE`` to time spinning threads instead.

Models: the shipped localiser and segmenter; for BLS-GAN ``--model`` if given, else the
promoted or shipped model (the trained cpu preset, ``unet_small`` generator), else the
trained candidate in ``blsgan_core/weights/candidates/``, and only if none exists an
untrained network of the architecture ``--backbone``. Times depend on the
machine and its load (printed); compare runs made on the same machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Time what a worker runs: its OpenMP wait policy (worker/openmp.py) must be in the
# environment before torch loads. Run with OMP_WAIT_POLICY=ACTIVE to compare.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
# The benchmark's radiographs are made by the test suite's DICOM factory.
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "tests" / "test_worker")]

from dicom_factory import make_dx, write_dataset  # noqa: E402
from installed import blsnode_command, user_environment  # noqa: E402
from worker_testing import add_job, node_settings  # noqa: E402

from blsgan_core.model import MODEL_KIND, BLSGANConfig, BLSGANModel, save_model  # noqa: E402
from blsgan_core.networks.generator import GeneratorConfig  # noqa: E402
from blsgan_core.registry import SHIPPED_WEIGHTS_DIR, ModelRegistry  # noqa: E402
from dicom_node.db import JobState, open_database  # noqa: E402
from dicom_node.db import jobs as job_rows  # noqa: E402
from dicom_node.queue.broker import TaskSender  # noqa: E402
from dicom_node.settings import OutputSettings  # noqa: E402
from worker.models import ModelCache  # noqa: E402
from worker.pipeline import STAGES, run_pipeline  # noqa: E402

REFERENCE_S = 1.9  # published BLS-GAN, model alone, five joints of one hand
TARGET_S = 1.5
TARGET_RSS_BYTES = 1.5e9


# The trained cpu-preset BLS-GAN while it waits as a candidate; once it ships in
# blsgan_core/weights/, the registry's shipped fallback finds it first.
CANDIDATE = SHIPPED_WEIGHTS_DIR / "candidates" / "blsgan-cpu.pt"


def blsgan_checkpoint(args: argparse.Namespace, folder: Path) -> Path | None:
    """The BLS-GAN to time: ``--model``, else the promoted or shipped one (``None``: the
    registry's choice), else the trained candidate, else an untrained ``--backbone``."""
    if args.model is not None:
        return Path(args.model)
    registry = ModelRegistry(folder / "none")
    if registry.promoted(MODEL_KIND) is not None:
        return None
    if CANDIDATE.is_file():
        return CANDIDATE
    path = folder / f"untrained-{args.backbone}.pt"
    config = BLSGANConfig(generator=GeneratorConfig(backbone=args.backbone))
    save_model(path, BLSGANModel(config), f"untrained-{args.backbone}")
    return path


def sources(data: Path, atlas_id: str, folder: Path) -> dict[str, Path]:
    """A one-hand and a two-hand DX of one atlas image at full resolution."""
    image = data / "images" / f"{atlas_id}.jpg"
    return {
        "one hand": write_dataset(make_dx(image), folder / "one.dcm"),
        "two hands": write_dataset(
            make_dx(image, two_hands=True, photometric="MONOCHROME1", bits_stored=14),
            folder / "two.dcm",
        ),
    }


def time_pipeline(path: Path, cache: ModelCache, runs: int, out: Path) -> dict[str, Any]:
    """Median seconds per stage over ``runs`` runs (after a warm-up), and the joints found."""
    models = cache.models()
    run_pipeline(path, models, OutputSettings(), out)  # warm-up: first-call allocations
    wall: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    cpu: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    joints = 0
    for _ in range(runs):
        result = run_pipeline(path, models, OutputSettings(), out)
        for stage in wall:
            wall[stage].append(result.timings_s[stage])
            cpu[stage].append(result.cpu_s[stage])
        joints = sum(len(hand.joints) for hand in result.result.hands)
    return {
        "wall": {stage: statistics.median(values) for stage, values in wall.items()},
        "cpu": {stage: statistics.median(values) for stage, values in cpu.items()},
        "joints": joints,
    }


def peak_rss(pid: int) -> int:
    """Peak resident set size (VmHWM) of a running process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def worker_memory(files: list[Path], models: dict[str, Path], threads: int, folder: Path) -> int:
    """Peak RSS of a real ``blsnode worker`` after it processed every file once."""
    settings = node_settings(folder / "node")
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # serve would have made it
    registry = ModelRegistry(settings.model_registry_dir)
    for kind, path in models.items():
        registry.register(path, f"bench-{kind}")
        registry.promote(f"bench-{kind}")
    job_ids = [add_job(settings, path, []) for path in files]
    env = user_environment(OMP_NUM_THREADS=str(threads))
    command = blsnode_command("--data-dir", settings.data_dir, "worker", "--queues", "process")
    log = (folder / "worker.log").open("wb")
    worker = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=folder)
    sender = TaskSender(settings)
    database = open_database(settings.database_url)
    try:
        for job_id in job_ids:
            sender.send_process(job_id)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with database.sessions() as session:
                states = [job_rows.get_job(session, j).state for j in job_ids]  # type: ignore[union-attr]
            if all(state in (JobState.DONE, JobState.FAILED) for state in states):
                break
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited early; see {folder / 'worker.log'}")
            time.sleep(0.5)
        else:
            raise RuntimeError("the worker did not finish the jobs in 10 minutes")
        if any(state is JobState.FAILED for state in states):
            raise RuntimeError(f"a job failed; see {folder / 'worker.log'}")
        return peak_rss(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        log.close()
        sender.close()
        database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=REPO_ROOT.parent / "shared/data/hand_radiographs"
    )
    parser.add_argument("--atlas-id", default="3149", help="atlas image (validation split)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="BLS-GAN checkpoint (default: shipped/candidate model)")
    parser.add_argument(
        "--backbone",
        default="unet_small",
        choices=["unet", "unet_small"],
        help="untrained BLS-GAN generator, only when no trained model ships",
    )
    parser.add_argument("--localiser", help="localiser checkpoint (default: the shipped one)")
    parser.add_argument("--segmenter", help="segmenter checkpoint (default: the shipped one)")
    parser.add_argument("--jobs", type=int, default=3, help="jobs for the memory measurement")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as temporary:
        folder = Path(temporary)
        model = blsgan_checkpoint(args, folder)
        overrides = {
            kind: Path(path)
            for kind, path in (
                (MODEL_KIND, model),
                ("localiser", args.localiser),
                ("segmenter", args.segmenter),
            )
            if path is not None
        }
        cache = ModelCache(ModelRegistry(folder / "registry"), "cpu", overrides)
        described = cache.models().describe()
        files = sources(args.data, args.atlas_id, folder)
        print(
            f"torch threads {args.threads} (OMP_WAIT_POLICY {os.environ['OMP_WAIT_POLICY']}), "
            f"load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs; BLS-GAN {described[MODEL_KIND]['name']} "
            f"({described[MODEL_KIND]['version']}), localiser "
            f"{described['localiser']['version']}, segmenter {described['segmenter']['version']}"
        )
        results = {
            label: time_pipeline(path, cache, args.runs, folder / "out" / label)
            for label, path in files.items()
        }
        header = "".join(f"{label + ' wall':>16}{label + ' CPU':>16}" for label in results)
        print(f"median of {args.runs} runs, s/radiograph{header}")
        for stage in (*STAGES, "total"):
            row = "".join(
                f"{r['wall'][stage]:16.3f}{r['cpu'][stage]:16.3f}" for r in results.values()
            )
            print(f"  {stage:<28}{row}")
        print(f"  {'joints':<28}" + "".join(f"{r['joints']:32d}" for r in results.values()))
        one_wall, one_cpu = results["one hand"]["wall"], results["one hand"]["cpu"]
        # On 2 idle cores a stage takes between half its CPU time (both cores busy) and
        # all of it (one thread): CPU time bounds the idle-machine latency from above.
        print(
            f"one hand: wall {one_wall['total']:.2f} s, CPU {one_cpu['total']:.2f} s "
            f"(target {TARGET_S} s on 2 cores; wall on an idle machine <= CPU time: "
            f"{'met' if one_cpu['total'] <= TARGET_S else 'not shown'})"
        )
        print(
            f"reference: published model alone {REFERENCE_S} s for 5 joints -> ratio "
            f"pipeline/reference wall {one_wall['total'] / REFERENCE_S:.2f}, CPU "
            f"{one_cpu['total'] / REFERENCE_S:.2f}; BLS-GAN stage/reference wall "
            f"{one_wall['separate'] / REFERENCE_S:.2f}, CPU {one_cpu['separate'] / REFERENCE_S:.2f}"
        )
        if not args.skip_memory:
            image = args.data / "images" / f"{args.atlas_id}.jpg"
            jobs = [
                write_dataset(
                    make_dx(image, two_hands=bool(n % 2), uid_seed=f"memory-{n}"),
                    folder / f"memory-{n}.dcm",
                )
                for n in range(args.jobs)
            ]
            rss = worker_memory(jobs, overrides, args.threads, folder / "memory")
            verdict = "met" if rss < TARGET_RSS_BYTES else "NOT met"
            print(
                f"worker peak RSS after {args.jobs} jobs: {rss / 1e9:.2f} GB "
                f"(target < {TARGET_RSS_BYTES / 1e9:.1f} GB: {verdict})"
            )


if __name__ == "__main__":
    main()
