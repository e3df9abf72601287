"""Structural check of an encoded data set: every element's declared length is present.

pydicom reads a truncated stream without complaint (the last value comes back short, or
elements are missing), so the listener walks the encoding itself before it answers
success. The walk reads only tags and lengths, never values, and descends into sequences
(items of defined and undefined length) and encapsulated pixel data.

Within every data set and item the tags must rise strictly (PS3.5 7.1): a repeated or
out-of-order element is refused. pydicom keeps the *last* of two equal tags, so a
Patient ID or Study Instance UID repeated after Pixel Data would be booked by the
listener (which reads the header only) with the first value and processed by the
worker with the second: results filed under another patient.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.datadict import DicomDictionary

# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_SHORT_VRS = frozenset(
    {
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
    }
)  # fmt: skip
UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM = (0xFFFE, 0xE000)
_ITEM_DELIMITER = (0xFFFE, 0xE00D)
_SEQUENCE_DELIMITER = (0xFFFE, 0xE0DD)
_PIXEL_DATA = (0x7FE0, 0x0010)
_MAX_DEPTH = 32
# An implicit VR encoding names no VR: sequences of defined length are known by their tag.
_SEQUENCE_TAGS = frozenset(
    ((tag >> 16), tag & 0xFFFF) for tag, entry in DicomDictionary.items() if entry[0] == "SQ"
)


class MalformedDatasetError(ValueError):
    """The encoded data set is truncated or its encoding makes no sense."""


class DatasetTooLargeError(ValueError):
    """The data set (inflated, if deflated) is larger than the node accepts."""


class _Walker:
    def __init__(
        self, data: bytes | bytearray | memoryview, implicit_vr: bool, little_endian: bool
    ) -> None:
        self.data = memoryview(data)
        # Offset of the first top-level element at or after Pixel Data: the header ends there.
        self.header_end: int | None = None
        # Whether the top-level Pixel Data is encapsulated (undefined length); None: absent.
        self.encapsulated: bool | None = None
        self.implicit_vr = implicit_vr
        prefix = "<" if little_endian else ">"
        self.tag = struct.Struct(prefix + "HH")
        self.u16 = struct.Struct(prefix + "H")
        self.u32 = struct.Struct(prefix + "L")

    def _need(self, pos: int, size: int, end: int, what: str) -> None:
        if pos + size > end:
            raise MalformedDatasetError(
                f"truncated at byte {pos}: {what} needs {size} bytes, {max(end - pos, 0)} left"
            )

    def dataset(self, pos: int, end: int, implicit: bool, depth: int, in_item: bool) -> int:
        """Walk elements from ``pos``; stop at ``end`` or, inside an item, at its delimiter."""
        if depth > _MAX_DEPTH:
            raise MalformedDatasetError(f"sequences nested deeper than {_MAX_DEPTH}")
        previous = (-1, -1)
        while pos < end:
            self._need(pos, 8, end, "an element header")
            group, element = self.tag.unpack_from(self.data, pos)
            if (group, element) == _ITEM_DELIMITER:
                if not in_item:
                    raise MalformedDatasetError(f"item delimiter outside an item at byte {pos}")
                return pos + 8
            if group == 0xFFFE:
                raise MalformedDatasetError(f"unexpected ({group:04X},{element:04X}) at byte {pos}")
            if (group, element) <= previous:
                raise MalformedDatasetError(
                    f"({group:04X},{element:04X}) at byte {pos} "
                    f"{'repeats' if (group, element) == previous else 'comes after'} "
                    f"({previous[0]:04X},{previous[1]:04X}): tags must rise strictly"
                )
            previous = (group, element)
            if depth == 0 and self.header_end is None and (group, element) >= _PIXEL_DATA:
                self.header_end = pos
            vr, length, header = self._element_header(pos, end, implicit)
            if depth == 0 and (group, element) == _PIXEL_DATA:
                self.encapsulated = length == UNDEFINED_LENGTH
            pos += header
            if length == UNDEFINED_LENGTH:
                if not implicit and vr not in (b"SQ", b"OB", b"OW", b"UN"):
                    raise MalformedDatasetError(
                        f"undefined length on VR {vr.decode('ascii', 'replace')} "
                        f"({group:04X},{element:04X})"
                    )
                nested_implicit = implicit or vr == b"UN"
                # Encapsulated pixel data: fragments, not items holding data sets.
                fragments = (group, element) == _PIXEL_DATA or vr in (b"OB", b"OW")
                pos = self.items(
                    pos, end, nested_implicit, depth + 1, defined_end=None, fragments=fragments
                )
            else:
                self._need(pos, length, end, f"the value of ({group:04X},{element:04X})")
                if vr == b"SQ" or (implicit and (group, element) in _SEQUENCE_TAGS):
                    self.items(
                        pos, pos + length, implicit, depth + 1, pos + length, fragments=False
                    )
                pos += length
        if in_item:
            raise MalformedDatasetError("an item of undefined length has no item delimiter")
        return pos

    def _element_header(self, pos: int, end: int, implicit: bool) -> tuple[bytes, int, int]:
        if implicit:
            return b"", self.u32.unpack_from(self.data, pos + 4)[0], 8
        vr = bytes(self.data[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            self._need(pos, 12, end, "an element header")
            return vr, self.u32.unpack_from(self.data, pos + 8)[0], 12
        if vr in _SHORT_VRS:
            return vr, self.u16.unpack_from(self.data, pos + 6)[0], 8
        raise MalformedDatasetError(f"unknown VR {vr!r} at byte {pos}")

    def items(
        self,
        pos: int,
        end: int,
        implicit: bool,
        depth: int,
        defined_end: int | None,
        fragments: bool,
    ) -> int:
        """Walk the items of a sequence (or the ``fragments`` of encapsulated pixel data)."""
        while pos < end:
            self._need(pos, 8, end, "an item header")
            tag = self.tag.unpack_from(self.data, pos)
            length = self.u32.unpack_from(self.data, pos + 4)[0]
            pos += 8
            if tag == _SEQUENCE_DELIMITER:
                if defined_end is not None:
                    raise MalformedDatasetError(
                        f"sequence delimiter in a defined-length sequence at {pos}"
                    )
                return pos
            if tag != _ITEM:
                raise MalformedDatasetError(f"expected an item at byte {pos - 8}, found {tag}")
            if length == UNDEFINED_LENGTH:
                if fragments:
                    raise MalformedDatasetError(
                        f"a pixel data fragment of undefined length at {pos}"
                    )
                pos = self.dataset(pos, end, implicit, depth, in_item=True)
            else:
                self._need(pos, length, end, "an item value")
                if not fragments:
                    self.dataset(pos, pos + length, implicit, depth, in_item=False)
                pos += length
        if defined_end is None:
            raise MalformedDatasetError("a sequence of undefined length has no sequence delimiter")
        return pos


@dataclass(frozen=True)
class Structure:
    """What the walk learnt: where the header ends, and how Pixel Data is encoded."""

    header_end: int
    pixel_data_encapsulated: bool | None


def walk(data: bytes | bytearray | memoryview, implicit_vr: bool, little_endian: bool) -> Structure:
    """Raise ``MalformedDatasetError`` unless ``data`` is a whole data set in that encoding.

    ``header_end`` is the offset of the Pixel Data element (or of the first element
    after it), or the whole length when there is none.
    """
    walker = _Walker(data, implicit_vr, little_endian)
    size = len(walker.data)
    if size == 0:
        raise MalformedDatasetError("the data set is empty")
    walker.dataset(0, size, implicit_vr, depth=0, in_item=False)
    end = size if walker.header_end is None else walker.header_end
    return Structure(end, walker.encapsulated)


def check_complete(
    data: bytes | bytearray | memoryview, implicit_vr: bool, little_endian: bool
) -> int:
    """``walk(...).header_end``: the length of the header of a whole data set."""
    return walk(data, implicit_vr, little_endian).header_end
