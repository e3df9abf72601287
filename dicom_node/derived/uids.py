"""Deterministic UIDs of the derived objects, so a re-run replaces instead of duplicating.

Every UID is a function of (source SOP Instance UID, model version, role), where the role
names the object and its place ("seg/instance", "sc/instance/L/MCP2/upper", ...). A job
that is retried, or re-run with the same model, yields the same Series and SOP Instance
UIDs, and PACS replace the earlier copies; another model version yields new objects
beside the old ones.

With ``outputs.uid_prefix`` set (the organisation's root, ending in ".") the UID is the
prefix followed by digits of a SHA-512 of the inputs (``pydicom.uid.generate_uid`` with
entropy sources). Without a prefix it is a ``2.25.`` UID of a name-based (SHA-1, RFC 4122
version 5) UUID, the form PS3.5 B.2 allows without a registered root.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from pydicom.uid import RE_VALID_UID, UID, generate_uid

from dicom_node.derived.model import Joint, Layer, Side
from dicom_node.settings import validate_uid_prefix

# Fixed namespace of this node's name-based UUIDs (uuid5 of the project's name).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/blsgan-node/derived-objects")


def derived_uid(
    source_sop_instance_uid: str, model_version: str, role: str, prefix: str | None = None
) -> UID:
    """The UID of the object playing ``role`` for this source and model version."""
    if len(source_sop_instance_uid) > 64 or not RE_VALID_UID.match(source_sop_instance_uid):
        raise ValueError(f"invalid source SOP Instance UID {source_sop_instance_uid!r}")
    if not model_version:
        raise ValueError("model_version must not be empty")
    if not role:
        raise ValueError("role must not be empty")
    # JSON keeps the parts apart: ("1.2", "34") and ("1.23", "4") hash differently.
    return _uid_of_name(json.dumps([str(source_sop_instance_uid), model_version, role]), prefix)


def device_uid(model_name: str, model_version: str, prefix: str | None = None) -> UID:
    """The Device Observer UID of a model: the same for every radiograph it reports on."""
    if not model_name or not model_version:
        raise ValueError("model name and version must not be empty")
    return _uid_of_name(json.dumps(["device", model_name, model_version]), prefix)


def _uid_of_name(name: str, prefix: str | None) -> UID:
    if prefix is None:
        return UID(f"2.25.{uuid.uuid5(_NAMESPACE, name).int}")
    validate_uid_prefix(prefix)
    return generate_uid(prefix=prefix, entropy_srcs=[name])


@dataclass(frozen=True)
class OutputUids:
    """The UIDs of all outputs of one radiograph and model version."""

    source_sop_instance_uid: str
    model_version: str
    prefix: str | None = None

    def _uid(self, role: str) -> UID:
        return derived_uid(self.source_sop_instance_uid, self.model_version, role, self.prefix)

    @property
    def seg_series(self) -> UID:
        """Series of the Segmentation."""
        return self._uid("seg/series")

    @property
    def seg_instance(self) -> UID:
        """The Segmentation instance."""
        return self._uid("seg/instance")

    @property
    def sc_series(self) -> UID:
        """Series of the Secondary Capture images."""
        return self._uid("sc/series")

    def sc_instance(self, side: Side, joint: Joint, layer: Layer) -> UID:
        """The Secondary Capture of one layer image of one joint."""
        return self._uid(f"sc/instance/{Side(side)}/{Joint(joint)}/{Layer(layer)}")

    @property
    def sc_overview(self) -> UID:
        """The overview Secondary Capture of the whole radiograph."""
        return self._uid("sc/instance/overview")

    @property
    def sr_series(self) -> UID:
        """Series of the Structured Report."""
        return self._uid("sr/series")

    @property
    def sr_instance(self) -> UID:
        """The Structured Report instance."""
        return self._uid("sr/instance")

    @property
    def pr_series(self) -> UID:
        """Series of the Grayscale Softcopy Presentation State."""
        return self._uid("pr/series")

    @property
    def pr_instance(self) -> UID:
        """The Grayscale Softcopy Presentation State instance."""
        return self._uid("pr/instance")

    def tracking(self, side: Side, joint: Joint, part: str) -> UID:
        """Tracking UID of one region (segment and SR measurement group share it)."""
        return self._uid(f"tracking/{Side(side)}/{Joint(joint)}/{part}")
