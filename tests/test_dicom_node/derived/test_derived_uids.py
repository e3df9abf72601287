"""Derived UIDs: deterministic per (source, model version, role), valid, prefix-aware."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydicom.uid import UID

from dicom_node.derived.model import Joint, Layer, Side
from dicom_node.derived.uids import OutputUids, derived_uid
from dicom_node.settings import OutputSettings

SOURCE = "1.2.826.0.1.3680043.8.498.12345678901234567890"


def _all(uids: OutputUids) -> list[UID]:
    per_layer = [
        uids.sc_instance(side, joint, layer) for side in Side for joint in Joint for layer in Layer
    ]
    return [
        uids.seg_series,
        uids.seg_instance,
        uids.sc_series,
        uids.sc_overview,
        uids.sr_series,
        uids.sr_instance,
        uids.tracking(Side.LEFT, Joint.MCP2, "overlap"),
        *per_layer,
    ]


@pytest.mark.parametrize("prefix", [None, "1.2.826.0.1.3680043.10.1234."])
def test_uids_are_stable_distinct_and_valid(prefix: str | None) -> None:
    uids = _all(OutputUids(SOURCE, "1.0.0", prefix))
    assert uids == _all(OutputUids(SOURCE, "1.0.0", prefix))  # a re-run: the same UIDs
    assert len(set(uids)) == len(uids) == 7 + 30
    for uid in uids:
        assert uid.is_valid, uid
        assert len(uid) <= 64
        assert uid.startswith(prefix or "2.25.")


def test_model_version_and_source_change_every_uid() -> None:
    base = set(_all(OutputUids(SOURCE, "1.0.0")))
    assert base.isdisjoint(_all(OutputUids(SOURCE, "1.0.1")))
    assert base.isdisjoint(_all(OutputUids(SOURCE + "1", "1.0.0")))


def test_parts_do_not_run_into_each_other() -> None:
    assert derived_uid("1.2.3", "45", "seg") != derived_uid("1.2.34", "5", "seg")


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="SOP Instance UID"):
        derived_uid("1.02.3", "1", "seg/instance")
    with pytest.raises(ValueError, match="model_version"):
        derived_uid(SOURCE, "", "seg/instance")
    with pytest.raises(ValueError, match="UID prefix"):
        derived_uid(SOURCE, "1", "seg/instance", prefix="1.2.3")
    with pytest.raises(ValueError, match="UID prefix"):
        derived_uid(SOURCE, "1", "seg/instance", prefix="1.02.3.")


def test_settings_refuse_an_invalid_prefix() -> None:
    assert OutputSettings(uid_prefix="1.2.3.").uid_prefix == "1.2.3."
    with pytest.raises(ValidationError, match="UID prefix"):
        OutputSettings(uid_prefix="1.2.x.")
    with pytest.raises(ValidationError, match="UID prefix"):
        OutputSettings(uid_prefix="1." * 28)
