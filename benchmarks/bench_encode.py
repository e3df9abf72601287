"""CPU time of writing all outputs of one hand radiograph, per builder, now and as before.

    .venv/bin/python benchmarks/bench_encode.py --runs 7

A full-resolution DX of an atlas hand (``tests/dicom_factory.py``) with synthetic results
for its five joints (``tests/test_dicom_node/derived/derived_fixtures.py``), read back
from a file as the worker reads it. Prints the median CPU seconds (``process_time``: all
threads, so the machine's load from other processes counts less than in wall time) of
each builder (SEG, SC, SR, GSPS), of serialising every object, and of ``write_outputs``
as a whole (fsync'ed files, now only). "previous" runs with pydicom's value validation
on, as before ``build_outputs`` turned it off; the two are timed in alternation so that
both see the same load. Compare ratios, not seconds, on a shared machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "tests/test_dicom_node/derived")]

from derived_fixtures import atlas_hand, synthetic_result  # noqa: E402
from dicom_factory import make_dx, write_dataset  # noqa: E402
from pydicom import config, dcmread  # noqa: E402

from dicom_node.derived.model import SpacingSource  # noqa: E402
from dicom_node.derived.presentation_state import build_presentation_state  # noqa: E402
from dicom_node.derived.secondary_capture import build_secondary_captures  # noqa: E402
from dicom_node.derived.segmentation import build_segmentation  # noqa: E402
from dicom_node.derived.source import with_usable_copied_attributes  # noqa: E402
from dicom_node.derived.structured_report import build_structured_report  # noqa: E402
from dicom_node.derived.uids import OutputUids  # noqa: E402
from dicom_node.derived.write import build_outputs, write_outputs  # noqa: E402
from dicom_node.pixels import load_radiograph  # noqa: E402
from dicom_node.settings import OutputSettings  # noqa: E402


def cpu_seconds(function: Callable[[], object]) -> float:
    """CPU seconds of one call."""
    start = time.process_time()
    function()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=REPO_ROOT.parent / "shared/data/hand_radiographs"
    )
    parser.add_argument("--atlas-id", default="3149")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    atlas = atlas_hand(args.data, args.atlas_id)
    dataset = make_dx(atlas.image)
    folder = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    header = dcmread(write_dataset(dataset, folder / "source.dcm"), stop_before_pixels=True)
    result = synthetic_result(
        atlas,
        load_radiograph(dataset).pixels,
        scale=1.0,
        mm_per_px=0.15,
        spacing=SpacingSource.IMAGER_PIXEL_SPACING,
    )
    outputs = OutputSettings()
    source = with_usable_copied_attributes(header)
    uids = OutputUids(str(source.SOPInstanceUID), result.model.version, outputs.uid_prefix)
    objects = build_outputs(header, result, outputs)

    def serialise() -> None:
        for item in objects:
            item.dataset.save_as(io.BytesIO(), enforce_file_format=True)

    parts: dict[str, Callable[[], object]] = {
        "SEG": lambda: build_segmentation(source, result, outputs, uids),
        "SC (16)": lambda: build_secondary_captures(source, result, outputs, uids),
        "SR": lambda: build_structured_report(source, result, outputs, uids),
        "GSPS": lambda: build_presentation_state(source, result, outputs, uids),
        "serialise all": serialise,
    }
    now: dict[str, list[float]] = {name: [] for name in parts}
    before: dict[str, list[float]] = {name: [] for name in parts}
    for name, part in parts.items():
        part()  # warm-up
        for _ in range(args.runs):
            with config.disable_value_validation():
                now[name].append(cpu_seconds(part))
            before[name].append(cpu_seconds(part))
    write = lambda: write_outputs(header, result, outputs, folder / "out")  # noqa: E731
    write()
    whole = statistics.median(cpu_seconds(write) for _ in range(args.runs))
    print(f"one hand {dataset.Rows}x{dataset.Columns}, median CPU s of {args.runs} runs")
    print(f"  {'part':16s} {'previous':>9s} {'now':>9s} {'ratio':>7s}")
    for name in parts:
        old, new = statistics.median(before[name]), statistics.median(now[name])
        print(f"  {name:16s} {old:9.3f} {new:9.3f} {new / old:7.2f}")
    print(f"  write_outputs (build, serialise, fsync, 4 threads): {whole:.3f}")


if __name__ == "__main__":
    main()
