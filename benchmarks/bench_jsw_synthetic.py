"""JSW accuracy on synthetic overlaps: measured overlap depth against the true one.

Every joint without overlap among the shipped segmenter's validation cases is moved into
an overlap with the pre-training recipe (seeded); the segmenter's masks of the synthetic
image are measured and compared with the true moved masks. Prints one JSON report with
the do-nothing baselines (see ``trainer/evaluation/jsw_accuracy.py``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_jsw_synthetic.py [--manifest PATH] [--seed 0]
        [--split val|all] [--lateral-jitter 2] [--segmenter CHECKPOINT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from blsgan_core.data import read_manifests
from blsgan_core.segment import load_segmenter
from blsgan_core.synthetic import SyntheticConfig
from trainer.evaluation.jsw_accuracy import synthetic_jsw_accuracy
from trainer.model_card import recorded_split

DEFAULT_MANIFEST = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mcp_joints" / "manifest.json"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split",
        choices=("val", "all"),
        default="val",
        help="val: only the joints the shipped segmenter was not trained on",
    )
    parser.add_argument(
        "--lateral-jitter",
        type=int,
        default=SyntheticConfig().lateral_jitter,
        help="sideways shift range (px); 0 makes the analytic width exact",
    )
    parser.add_argument(
        "--segmenter",
        type=Path,
        help="segmenter checkpoint to measure (default: the shipped one)",
    )
    args = parser.parse_args()
    segmenter = load_segmenter(args.segmenter)
    records = read_manifests(args.manifest).records
    if args.split == "val":
        cases = set(recorded_split(segmenter.metadata)["val_cases"])
        records = tuple(r for r in records if r.case in cases)
    started = time.perf_counter()
    config = SyntheticConfig(lateral_jitter=args.lateral_jitter)
    report = synthetic_jsw_accuracy(records, segmenter, seed=args.seed, config=config)
    report["split"] = args.split
    report["seconds"] = time.perf_counter() - started
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
