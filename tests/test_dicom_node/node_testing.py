"""Helpers for the dicom_node tests: DICOM test objects, senders, node settings.

Ports, waiting and system programs come from ``tests/loopback.py``, Orthanc from
``tests/orthanc_server.py``; both are shared with the other test packages.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopback import free_port, system_program
from loopback import wait_for_port as wait_for_port
from loopback import wait_until as wait_until

from dicom_node.settings import Settings, load_settings

# Tests written before tests/loopback.py import these from here; new code imports loopback.
dcmtk = system_program

# --- DICOM test objects -------------------------------------------------------------

DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def hand_dataset(
    rows: int = 64,
    columns: int = 48,
    bits_stored: int = 12,
    seed: int = 0,
    **attributes: object,
):
    """A small PA hand radiograph (DX for presentation) with random pixels.

    Generated rather than real so each test isolates one property; ``attributes``
    override or add elements by keyword (``None`` deletes one).
    """
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = DX_PRESENTATION
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "TEST^HAND"
    ds.PatientID = "PID-0001"
    ds.StudyDate = "20250106"
    ds.Modality = "DX"
    ds.Manufacturer = "TestVendor"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.SeriesDescription = "Hand PA"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16 if bits_stored > 8 else 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    dtype = np.uint16 if bits_stored > 8 else np.uint8
    pixels = rng.integers(0, 1 << bits_stored, size=(rows, columns), dtype=dtype)
    ds.PixelData = pixels.tobytes()
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def save(ds, path: Path) -> Path:
    """Write ``ds`` as a Part 10 file in its file meta transfer syntax."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def store_datasets(
    port: int,
    datasets: list,
    called: str = "BLSNODE",
    calling: str = "TESTSCU",
    host: str = "127.0.0.1",
    tls=None,
) -> list[int]:
    """C-STORE each dataset (or Part 10 path) over one pynetdicom association; the statuses."""
    from pydicom import dcmread
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    contexts: dict[str, set[str]] = {}
    for item in datasets:
        ds = item if not isinstance(item, str | Path) else dcmread(item, stop_before_pixels=True)
        contexts.setdefault(str(ds.file_meta.MediaStorageSOPClassUID), set()).add(
            str(ds.file_meta.TransferSyntaxUID)
        )
    for sop_class, syntaxes in contexts.items():
        for syntax in sorted(syntaxes):
            ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate(host, port, ae_title=called, tls_args=tls)
    if not assoc.is_established:
        raise ConnectionError(f"association refused (rejected={assoc.is_rejected})")
    try:
        statuses = []
        for item in datasets:
            response = assoc.send_c_store(item)
            statuses.append(int(response.Status) if "Status" in response else -1)
        return statuses
    finally:
        assoc.release()


def echo_status(
    port: int, called: str = "BLSNODE", calling: str = "TESTSCU", tls=None
) -> int | None:
    """C-ECHO; the status, or ``None`` when no association was established."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called, tls_args=tls)
    if not assoc.is_established:
        return None
    try:
        response = assoc.send_c_echo()
        return int(response.Status) if "Status" in response else None
    finally:
        assoc.release()


# --- settings -----------------------------------------------------------------


def merge_settings(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def node_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Test settings: loopback, free ports, no disk guard, quick sweeps, no worker."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "network": {"host": "127.0.0.1", "port": free_port(), "ae_title": "BLSNODE"},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "storage": {"min_free_bytes": 0},
        "broker": {"sweep_interval_s": 0.2},
        "worker": {"embedded": False},
        "logging": {"to_file": False},
    }
    return load_settings(**merge_settings(base, overrides))


class RecordingSCP:
    """A pynetdicom storage SCP in this process that counts associations and C-STOREs.

    ``refuse`` maps SOP Instance UIDs to the failure status to answer for them;
    ``abort_on`` names UIDs whose C-STORE aborts the association instead, as a peer that
    crashes in the middle of a batch would; ``on_received(uid, count)`` runs after each
    stored instance is counted, before the answer goes back; ``tls`` makes it a TLS peer.
    """

    def __init__(
        self,
        ae_title: str = "RECORDER",
        refuse: dict[str, int] | None = None,
        abort_on: set[str] | None = None,
        on_received: Callable[[str, int], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        from collections import Counter

        self.ae_title = ae_title
        self.port = free_port()
        self.refuse = dict(refuse or {})
        self.abort_on = set(abort_on or ())
        self.on_received = on_received
        self.tls = tls
        self.associations = 0
        self.received: Counter[str] = Counter()
        self._server: Any = None

    def start(self) -> RecordingSCP:
        """Listen on loopback until ``stop``."""
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        def on_requested(event: Any) -> None:
            self.associations += 1

        def on_store(event: Any) -> int:
            uid = str(event.request.AffectedSOPInstanceUID)
            if uid in self.abort_on:
                event.assoc.abort()
                return 0xA700
            if uid in self.refuse:
                return self.refuse[uid]
            self.received[uid] += 1
            if self.on_received is not None:
                self.on_received(uid, self.received.total())
            return 0x0000

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context("1.2.840.10008.1.1")  # Verification: C-ECHO is answered
        handlers = [(evt.EVT_REQUESTED, on_requested), (evt.EVT_C_STORE, on_store)]
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers, ssl_context=self.tls
        )
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
