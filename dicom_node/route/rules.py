"""Routing rules: which instances are processed, and where results and originals go.

Pure functions of an instance's header, the rules and the known destinations, so every
decision can be tested without a network or a database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dicom_node.receive.header import InstanceHeader
from dicom_node.settings import (
    DestinationSettings,
    OutputSettings,
    RuleSettings,
    SendWhat,
)

logger = logging.getLogger(__name__)

_RESULTS = (SendWhat.RESULTS, SendWhat.ALL)
_ORIGINALS = (SendWhat.ORIGINALS, SendWhat.ALL)


@dataclass(frozen=True)
class Decision:
    """What happens to one stored instance."""

    rule: str | None
    process: bool
    result_destinations: tuple[str, ...] = ()
    original_destinations: tuple[str, ...] = ()
    own_output: bool = False


def is_own_output(header: InstanceHeader, outputs: OutputSettings) -> bool:
    """True for an object this node made (sent back to it by a PACS, say).

    Recognised by the UID root of our outputs, our manufacturer name, or one of our series
    descriptions, so a loop (node -> PACS -> node) stops at the second hop.
    """
    if outputs.uid_prefix and header.sop_instance_uid.startswith(outputs.uid_prefix):
        return True
    if header.manufacturer and header.manufacturer == outputs.manufacturer:
        return True
    ours = {
        outputs.seg_series_description,
        outputs.sc_series_description,
        outputs.sr_series_description,
    }
    return header.series_description in ours


def _accepts(accepted: Sequence[str], value: str | None) -> bool:
    if not accepted:
        return True
    normalised = (value or "").strip().upper()
    return normalised in {item.strip().upper() for item in accepted}


def _searches(pattern: str | None, *texts: str | None) -> bool:
    if pattern is None:
        return True
    return any(text and re.search(pattern, text, re.IGNORECASE) for text in texts)


def rule_matches(rule: RuleSettings, header: InstanceHeader) -> bool:
    """True when every condition of ``rule`` holds for ``header``."""
    if not (
        _accepts(rule.modalities, header.modality)
        and _accepts(rule.body_parts, header.body_part_examined)
        and _accepts(rule.view_positions, header.view_position)
        and _accepts(rule.sop_classes, header.sop_class_uid)
    ):
        return False
    if not _searches(rule.series_description_regex, header.series_description):
        return False
    if not _searches(rule.study_description_regex, header.study_description):
        return False
    excluded = rule.exclude_description_regex is not None and _searches(
        rule.exclude_description_regex, header.series_description, header.study_description
    )
    return not excluded


def _targets(
    named: list[str] | None,
    destinations: Sequence[DestinationSettings],
    kinds: tuple[SendWhat, ...],
    rule: str,
) -> tuple[str, ...]:
    eligible = [d.name for d in destinations if d.send in kinds]
    if named is None:
        return tuple(eligible)
    known = {d.name for d in destinations}
    for name in named:
        if name not in known:
            logger.warning("rule %s names unknown destination %s; skipped", rule, name)
        elif name not in eligible:
            logger.warning("rule %s: destination %s does not take this kind of file", rule, name)
    return tuple(name for name in named if name in eligible)


def decide(
    header: InstanceHeader,
    rules: Sequence[RuleSettings],
    destinations: Sequence[DestinationSettings],
    outputs: OutputSettings,
) -> Decision:
    """Apply the first matching rule; our own outputs are never processed nor forwarded."""
    if is_own_output(header, outputs):
        return Decision(rule=None, process=False, own_output=True)
    for rule in rules:
        if rule_matches(rule, header):
            return Decision(
                rule=rule.name,
                process=rule.process,
                result_destinations=(
                    _targets(rule.results_to, destinations, _RESULTS, rule.name)
                    if rule.process
                    else ()
                ),
                original_destinations=_targets(
                    rule.originals_to, destinations, _ORIGINALS, rule.name
                ),
            )
    return Decision(rule=None, process=False)
