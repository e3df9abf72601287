"""Measure the reference grey statistics of ``blsgan_core.harmonise`` from training crops.

The reference is the mean, over the valid training crops of ``mcp_joints`` (the split
the segmenter trains on), of each crop's grey-value percentiles at
``blsgan_core.harmonise.PERCENTILES``. Prints the tuple to paste into ``REFERENCE``::

    python -m trainer.frontend.intensity_reference --data ../shared/data/mcp_joints
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from blsgan_core.harmonise import PERCENTILES
from trainer.frontend.hand_data import read_grey
from trainer.frontend.joint_data import JointRecord, training_records


def reference_percentiles(records: list[JointRecord]) -> np.ndarray:
    """Mean percentile curve (at ``PERCENTILES``) of the records' images, grey / 255."""
    if not records:
        raise ValueError("no records to measure the reference on")
    curves = [np.percentile(read_grey(r.image), PERCENTILES) for r in records]
    return np.mean(curves, axis=0)


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("../shared/data/mcp_joints"),
    show_default=True,
)
def main(data_dir: Path) -> None:
    """Print the reference percentiles of the training split."""
    records = training_records(data_dir / "manifest.json")
    values = reference_percentiles(records)
    click.echo(f"{len(records)} training crops")
    click.echo("REFERENCE = (" + ", ".join(f"{v:.4f}" for v in values) + ")")


if __name__ == "__main__":
    main()
