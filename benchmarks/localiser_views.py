"""Is the mirrored landmark view worth its cost? Accuracy with both views and with one.

    .venv/bin/python benchmarks/localiser_views.py --threads 1

The landmark network knows left hands only; ``locate`` shows it every hand box as is and
mirrored and keeps the plausible, more confident answer (``_best_view``). This script
runs ``evaluate_localization`` (what ``blsnode evaluate --task localization`` runs) on
the validation split, for every variant (left hands, right hands, two hands), once as
shipped and once with the choice forced to the as-is view, which is what dropping the
mirrored pass would give. It also prints the mean landmark mass of both views of every
box, to show how far apart right and wrong views are (the margin a "mirror only when
unsure" rule would rely on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

import blsgan_core.joints.locate  # noqa: F401  (the module, shadowed by the function)
from blsgan_core.joints import load_localiser
from trainer.evaluation.localization import VARIANTS, evaluate_localization
from trainer.frontend.hand_data import read_landmarks_csv, select_split

LOCATE = sys.modules["blsgan_core.joints.locate"]
KEYS = ("n_hands", "n_hands_found", "n_joints", "n_detected", "mre_rel", "within_10pct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--landmarks",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared/data/hand_radiographs/landmarks.csv",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = select_split(read_landmarks_csv(args.landmarks), "val", seed=0)
    model = load_localiser()
    chosen_means: list[float] = []
    other_means: list[float] = []
    best_view = LOCATE._best_view

    def recording(peaks: np.ndarray) -> int:
        choice = int(best_view(peaks))
        means = peaks[:, :, 2].mean(axis=1)
        chosen_means.append(float(means[choice]))
        other_means.append(float(means[1 - choice]))
        return choice

    for views, choose in (("both views", recording), ("as-is only", lambda peaks: 0)):
        with mock.patch.object(LOCATE, "_best_view", choose):
            for variant in VARIANTS:
                report: dict[str, Any] = evaluate_localization(records, model, variant)
                row = {key: report[key] for key in KEYS}
                print(f"{views:<11} {variant:<10} {json.dumps(row)}")
    print(
        f"{len(chosen_means)} boxes: mean landmark mass of the chosen view "
        f"{min(chosen_means):.3f}-{max(chosen_means):.3f}, of the other view "
        f"{min(other_means):.3f}-{max(other_means):.3f}"
    )


if __name__ == "__main__":
    main()
