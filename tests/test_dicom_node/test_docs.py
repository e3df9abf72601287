"""The conformance statement lists exactly what the listener negotiates and answers."""

from __future__ import annotations

from pathlib import Path

from pynetdicom import AllStoragePresentationContexts

from dicom_node.dimse_status import DicomStatus
from dicom_node.receive.scp import SUPPORTED_TRANSFER_SYNTAXES, build_ae
from dicom_node.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_conformance_statement_covers_every_context_syntax_and_status() -> None:
    text = (DOCS / "conformance-statement.md").read_text()
    ae = build_ae(Settings())
    supported = {str(cx.abstract_syntax) for cx in ae.supported_contexts}
    assert {str(cx.abstract_syntax) for cx in AllStoragePresentationContexts} < supported
    for uid in supported:
        assert f"`{uid}`" in text, uid
    for syntax in SUPPORTED_TRANSFER_SYNTAXES:
        assert f"`{syntax}`" in text, syntax.name
    for status in DicomStatus:
        assert f"`0x{status.value:04X}`" in text, status.name


def test_operations_guide_names_every_node_command() -> None:
    text = (DOCS / "operations-node.md").read_text()
    for command in ("serve", "status --json", "jobs list", "jobs show", "jobs retry",
                    "destinations add", "destinations remove", "destinations list",
                    "destinations echo", "purge"):  # fmt: skip
        assert f"blsnode {command}" in text, command
