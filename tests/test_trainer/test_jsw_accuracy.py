"""JSW accuracy on synthetic overlaps: the report and its baselines on a few real joints."""

from __future__ import annotations

import pytest

from blsgan_core.data import ManifestContents
from blsgan_core.segment import load_segmenter
from blsgan_core.synthetic import SyntheticConfig
from trainer.evaluation.jsw_accuracy import synthetic_jsw_accuracy
from trainer.model_card import recorded_split


def test_synthetic_report_beats_the_blind_baselines(full_manifest: ManifestContents) -> None:
    segmenter = load_segmenter()
    cases = set(recorded_split(segmenter.metadata)["val_cases"])
    records = [r for r in full_manifest.records if r.case in cases][:24]
    report = synthetic_jsw_accuracy(records, segmenter, seed=0)
    assert report["n_joints"] == sum(r.overlap_px == 0 for r in records) >= 8
    assert report["n_measured"] == report["n_joints"]
    # Every synthetic joint overlaps (the shifts close gaps of a few pixels by 2-16 px).
    assert report["true_overlap_depth_px"]["overlapping"] == report["n_joints"]
    baselines = report["baselines"]
    assert baselines["no_overlap"]["overlap_depth_mae_px"] == pytest.approx(
        report["true_overlap_depth_px"]["mean"]
    )
    # Measuring the synthetic image must beat both measures that ignore the shift.
    assert report["overlap_depth_mae_px"] < baselines["no_overlap"]["overlap_depth_mae_px"]
    assert report["overlap_depth_mae_px"] < baselines["source_unshifted"]["overlap_depth_mae_px"]


def test_no_source_without_overlap_is_refused(full_manifest: ManifestContents) -> None:
    overlapping = [r for r in full_manifest.records if r.overlap_px > 0][:3]
    with pytest.raises(ValueError, match="no joint without overlap"):
        synthetic_jsw_accuracy(overlapping, load_segmenter())


def test_measurement_on_the_annotated_masks_is_exact(full_manifest: ManifestContents) -> None:
    """Without sideways jitter the true width is the source's minus the shift: the
    measurement on the true moved masks must hit it, so any error is the masks'."""
    segmenter = load_segmenter()
    records = [r for r in full_manifest.records if r.overlap_px == 0][:6]
    exact = SyntheticConfig(lateral_jitter=0)
    report = synthetic_jsw_accuracy(records, segmenter, seed=1, config=exact)
    analytic = report["against_analytic_min_width"]
    assert analytic["exact"] and analytic["annotated_masks_mae_px"] == 0.0
    assert analytic["predicted_masks_mae_px"] == pytest.approx(report["min_width_mae_px"])
