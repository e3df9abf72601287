"""Each distinct code item of the derived objects encoded once, as pydicom writes it.

Most elements of the SR (about four in five) and many of the SEG's sit in code sequences:
a concept name, a unit, a finding site, a derivation, each a one-item sequence of a code
value, scheme and meaning. A radiograph's objects name a few dozen distinct codes a few
hundred times, and pydicom encodes each element, however often it recurs, in Python.
Here every code sequence is encoded once with pydicom's own writer and the dataset holds
the bytes (an encoded element, as pydicom keeps one it has read and not yet decoded);
pydicom writes such an element as it is. The file is byte for byte the one pydicom
writes from the dataset as built, which the tests check; the dataset reads the same.

pydicom writes encoded elements only in datasets whose original encoding is the file's:
every dataset of the object is marked so, and the ambiguous VRs that pydicom would
otherwise resolve while writing (Pixel Data's OB or OW) are resolved here, with
pydicom's function, on the way through the tree.
"""

from __future__ import annotations

from collections.abc import Hashable, MutableSequence
from typing import Any

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr_element, write_data_element
from pydicom.valuerep import AMBIGUOUS_VR

# Tag, VR and length field of an explicit-VR element with a 4-byte length, such as SQ.
_SQ_HEADER = 12

CodeCache = dict[Hashable, RawDataElement]


def encode_codes_once(dataset: Dataset, cache: CodeCache) -> None:
    """Replace every code sequence of ``dataset`` (at any depth) by its encoded form.

    ``dataset`` must carry file meta with an explicit-VR little-endian transfer syntax
    (every derived object does); ``cache`` holds the codes already encoded and may be
    shared by the objects of one radiograph.
    """
    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax.is_implicit_VR or not syntax.is_little_endian:
        raise ValueError(f"codes are encoded for explicit VR little endian, not {syntax.name}")
    _encode(dataset, [dataset], default_encoding, cache)


def _encode(
    dataset: Dataset, ancestors: list[Dataset], parent_encoding: Any, cache: CodeCache
) -> None:
    """``ancestors``: ``dataset`` and the datasets above it, closest first."""
    # As pydicom's write_dataset: a dataset's own character set, else its parent's.
    encoding = dataset.get("SpecificCharacterSet", parent_encoding)
    for element in list(dataset.values()):
        if isinstance(element, RawDataElement):
            continue  # already encoded
        if element.VR in AMBIGUOUS_VR:
            correct_ambiguous_vr_element(element, dataset, True, ancestors)
        if element.VR != "SQ":
            continue
        key = _code_key(element, encoding)
        if key is None:
            for item in element.value:
                _encode(item, [item, *ancestors], encoding, cache)
            continue
        if key not in cache:
            cache[key] = _encoded(element, encoding)
        dataset[element.tag] = cache[key]
    # The character set pydicom compares with the original one before writing as is.
    dataset.set_original_encoding(False, True, dataset._character_set)


def _code_key(element: DataElement, encoding: Any) -> Hashable | None:
    """What identifies ``element``'s encoding if it is a code sequence, else ``None``.

    A code sequence here: a ``...CodeSequence`` of one item of text values only, of
    defined length (as pydicom writes one built in memory).
    """
    if (
        not element.keyword.endswith("CodeSequence")
        or len(element.value) != 1
        or element.is_undefined_length
    ):
        return None
    item = element.value[0]
    values = tuple((each.tag, each.VR, each.value) for each in item.elements())
    if not all(isinstance(value, str) for _, _, value in values):
        return None
    charset = tuple(encoding) if isinstance(encoding, MutableSequence) else encoding
    return element.tag, charset, values


def _encoded(element: DataElement, encoding: Any) -> RawDataElement:
    """``element`` as pydicom writes it (explicit VR little endian), kept encoded."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, element, encoding)
    value = buffer.getvalue()[_SQ_HEADER:]
    return RawDataElement(element.tag, "SQ", len(value), value, 0, False, True)
