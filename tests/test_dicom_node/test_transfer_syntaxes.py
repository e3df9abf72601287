"""Every supported transfer syntax arrives by dcmtk storescu and is stored as received.

Compressed files are made with pydicom's encoders (RLE, JPEG-LS, JPEG 2000) and dcmtk's
``dcmcjpeg`` (the JPEG processes); the stored pixel data must be the very bytes sent (no
decoding in the handler) and must still decode to the original pixels where lossless.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopback import system_program
from node_testing import hand_dataset, node_settings, save, store_datasets
from pydicom import dcmread
from pydicom.uid import UID
from sqlalchemy import select

from blsnode.node import Node
from dicom_node.db import Instance
from dicom_node.receive.scp import SUPPORTED_TRANSFER_SYNTAXES


@dataclass(frozen=True)
class Case:
    syntax: UID
    storescu_option: str | None  # None: sent with pynetdicom (storescu cannot propose it)
    lossless: bool
    bits: int = 12


# How each syntax the node supports is sent, by its keyword: storescu's option, whether
# it is lossless, the bits stored (baseline JPEG takes 8). A syntax added to the node
# without a line here fails at collection.
SENDING = {
    "ImplicitVRLittleEndian": ("-xi", True, 12),
    "ExplicitVRLittleEndian": ("-xe", True, 12),
    "ExplicitVRBigEndian": ("-xb", True, 12),
    "DeflatedExplicitVRLittleEndian": ("-xd", True, 12),
    "JPEGBaseline8Bit": ("-xy", False, 8),
    "JPEGExtended12Bit": ("-xx", False, 12),
    "JPEGLossless": (None, True, 12),
    "JPEGLosslessSV1": ("-xs", True, 12),
    "JPEGLSLossless": ("-xt", True, 12),
    "JPEGLSNearLossless": ("-xu", False, 12),
    "JPEG2000Lossless": ("-xv", True, 12),
    "JPEG2000": ("-xw", False, 12),
    "RLELossless": ("-xr", True, 12),
}
CASES = [Case(UID(syntax), *SENDING[UID(syntax).keyword]) for syntax in SUPPORTED_TRANSFER_SYNTAXES]
# Encoders: dcmtk's dcmcjpeg for the JPEG processes, pydicom's for the others.
DCMCJPEG_OPTION = {
    "JPEGBaseline8Bit": "+eb",
    "JPEGExtended12Bit": "+ee",
    "JPEGLossless": "+el",
    "JPEGLosslessSV1": "+e1",
}
PYDICOM_ENCODING: dict[str, dict[str, Any]] = {
    "JPEGLSLossless": {},
    "JPEGLSNearLossless": {"jls_error": 2},
    "JPEG2000Lossless": {},
    "JPEG2000": {"j2k_cr": [8]},
    "RLELossless": {},
}


def test_the_node_supports_the_usual_syntaxes_and_every_one_is_sent() -> None:
    # Literal UIDs (PS3.6 Table A-1): independent of the names both sides import.
    usual = {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian: every node must accept it
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.5",
    }
    assert usual <= set(SUPPORTED_TRANSFER_SYNTAXES)
    assert set(SENDING) == {UID(syntax).keyword for syntax in SUPPORTED_TRANSFER_SYNTAXES}


def make_file(case: Case, folder: Path, seed: int) -> tuple[Path, np.ndarray]:
    """A hand radiograph in ``case.syntax`` and its original pixels."""
    ds = hand_dataset(bits_stored=case.bits, seed=seed)
    original = ds.pixel_array.copy()
    plain = save(ds, folder / f"{seed}-plain.dcm")
    target = folder / f"{seed}.dcm"
    keyword = case.syntax.keyword
    if keyword in DCMCJPEG_OPTION:
        subprocess.run(
            [system_program("dcmcjpeg"), DCMCJPEG_OPTION[keyword], str(plain), str(target)],
            check=True,
        )
    elif keyword == "ExplicitVRBigEndian":
        # pydicom writes OW pixel data unswapped; dcmtk converts it properly.
        subprocess.run([system_program("dcmconv"), "+tb", str(plain), str(target)], check=True)
    elif keyword in PYDICOM_ENCODING:
        ds.compress(case.syntax, generate_instance_uid=False, **PYDICOM_ENCODING[keyword])
        save(ds, target)
    else:
        ds.file_meta.TransferSyntaxUID = case.syntax
        save(ds, target)
    assert dcmread(target).file_meta.TransferSyntaxUID == case.syntax
    return target, original


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory):
    node = Node(node_settings(tmp_path_factory.mktemp("ts-node")))
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.syntax.name)
def test_transfer_syntax_is_stored_as_received(
    shared_node: Node, case: Case, tmp_path: Path
) -> None:
    seed = CASES.index(case) + 100
    path, original = make_file(case, tmp_path, seed)
    port = shared_node.settings.network.port
    if case.storescu_option is None:
        assert store_datasets(port, [path]) == [0]
    else:
        sent = subprocess.run(
            [
                system_program("storescu"),
                case.storescu_option,
                "-aec",
                "BLSNODE",
                "127.0.0.1",
                str(port),
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0 and "Store Failed" not in sent.stderr, sent.stderr
    sop_instance_uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    assert shared_node.database is not None
    with shared_node.database.sessions() as session:
        instance = session.scalars(
            select(Instance).where(Instance.sop_instance_uid == sop_instance_uid)
        ).one()
    assert instance.transfer_syntax_uid == case.syntax
    stored = dcmread(instance.path)
    assert stored.file_meta.TransferSyntaxUID == case.syntax
    source = dcmread(path)
    assert stored.PixelData == source.PixelData
    pixels = stored.pixel_array
    assert pixels.shape == original.shape
    # What was stored decodes to exactly what was sent; lossless syntaxes to the original.
    np.testing.assert_array_equal(pixels, source.pixel_array)
    if case.lossless:
        np.testing.assert_array_equal(pixels, original)
