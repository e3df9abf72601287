"""Routing decisions: the hand PA default, conditions, destinations, the loop guard."""

from __future__ import annotations

import dataclasses

import pytest
from node_testing import CR_IMAGE, CT_IMAGE, DX_PROCESSING
from pydantic import ValidationError

from dicom_node.receive.header import InstanceHeader
from dicom_node.route.rules import decide, is_own_output, rule_matches
from dicom_node.settings import DestinationSettings, OutputSettings, RuleSettings, Settings

HAND = InstanceHeader(
    sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
    sop_instance_uid="1.2.3.4.5",
    study_instance_uid="1.2.3",
    series_instance_uid="1.2.3.4",
    transfer_syntax_uid="1.2.840.10008.1.2.1",
    modality="DX",
    body_part_examined="HAND",
    view_position="PA",
    series_description="Hand PA",
    manufacturer="Vendor",
)
DEFAULT_RULES = Settings().rules
PACS = DestinationSettings(name="PACS", ae_title="PACS", host="h", port=104, send="results")
ARCHIVE = DestinationSettings(name="ARCHIVE", ae_title="AR", host="h", port=104, send="originals")
VIEWER = DestinationSettings(name="VIEWER", ae_title="V", host="h", port=104, send="all")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"view_position": None},
        {"view_position": "pa"},
        {"modality": "CR", "sop_class_uid": CR_IMAGE},
        {"sop_class_uid": DX_PROCESSING},
    ],
)
def test_default_rule_takes_hand_pa_radiographs(changes: dict) -> None:
    header = dataclasses.replace(HAND, **changes)
    decision = decide(header, DEFAULT_RULES, [PACS, ARCHIVE, VIEWER], OutputSettings())
    assert decision.process
    assert decision.rule == "hand-pa"
    assert decision.result_destinations == ("PACS", "VIEWER")
    assert decision.original_destinations == ("ARCHIVE", "VIEWER")


@pytest.mark.parametrize(
    "changes",
    [
        {"view_position": "LAT"},
        {"body_part_examined": "CHEST"},
        {"body_part_examined": None},
        {"modality": "CT", "sop_class_uid": CT_IMAGE},
        {"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"},
    ],
)
def test_default_rule_leaves_other_images_alone(changes: dict) -> None:
    decision = decide(dataclasses.replace(HAND, **changes), DEFAULT_RULES, [PACS], OutputSettings())
    assert not decision.process
    assert decision.rule is None
    assert decision.original_destinations == ()


def test_regular_expressions_and_exclusions() -> None:
    rule = RuleSettings(name="r", series_description_regex=r"hand", exclude_description_regex="lat")
    assert rule_matches(rule, HAND)
    assert not rule_matches(rule, dataclasses.replace(HAND, series_description="Hand LAT"))
    assert not rule_matches(rule, dataclasses.replace(HAND, series_description="Wrist"))
    study = RuleSettings(name="s", study_description_regex="^RA follow")
    assert not rule_matches(study, HAND)
    assert rule_matches(study, dataclasses.replace(HAND, study_description="ra follow-up"))


def test_first_matching_rule_wins_and_names_its_destinations() -> None:
    forward_only = RuleSettings(
        name="forward-chest", process=False, body_parts=["CHEST"], originals_to=["ARCHIVE"]
    )
    hands = RuleSettings(name="hands", results_to=["PACS", "NOWHERE"], originals_to=[])
    rules = [forward_only, hands]
    chest = decide(
        dataclasses.replace(HAND, body_part_examined="CHEST"),
        rules,
        [PACS, ARCHIVE],
        OutputSettings(),
    )
    assert (chest.rule, chest.process, chest.original_destinations) == (
        "forward-chest",
        False,
        ("ARCHIVE",),
    )
    hand = decide(HAND, rules, [PACS, ARCHIVE], OutputSettings())
    assert hand.result_destinations == ("PACS",)
    assert hand.original_destinations == ()


def test_loop_guard_recognises_our_outputs() -> None:
    outputs = OutputSettings(uid_prefix="1.2.826.0.1.99.")
    for changes in (
        {"sop_instance_uid": "1.2.826.0.1.99.7"},
        {"manufacturer": "blsgan-node"},
        {"series_description": "BLS-GAN MCP bone layers"},
    ):
        header = dataclasses.replace(HAND, **changes)
        assert is_own_output(header, outputs)
        decision = decide(header, DEFAULT_RULES, [PACS, VIEWER], outputs)
        assert decision.own_output and not decision.process
        assert decision.original_destinations == ()
    assert not is_own_output(HAND, outputs)


def test_invalid_rule_settings_are_named() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        RuleSettings(name="bad", series_description_regex="(")
    with pytest.raises(ValidationError, match="unique"):
        Settings(destinations=[PACS.model_dump(), PACS.model_dump()])
