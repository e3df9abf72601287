"""Structural check of an encoded data set: every element's declared length is present.

pydicom reads a truncated stream without complaint (the last value comes back short, or
elements are missing), so the listener walks the encoding itself before it answers
success. The walk reads only tags and lengths, never values, and descends into sequences
and encapsulated pixel data to find their delimiters.
"""

from __future__ import annotations

import struct

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


class MalformedDatasetError(ValueError):
    """The encoded data set is truncated or its encoding makes no sense."""


class _Walker:
    def __init__(self, data: bytes | memoryview, implicit_vr: bool, little_endian: bool) -> None:
        self.data = memoryview(data)
        # Offset of the first top-level element at or after Pixel Data: the header ends there.
        self.header_end: int | None = None
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
        while pos < end:
            self._need(pos, 8, end, "an element header")
            group, element = self.tag.unpack_from(self.data, pos)
            if (group, element) == _ITEM_DELIMITER:
                if not in_item:
                    raise MalformedDatasetError(f"item delimiter outside an item at byte {pos}")
                return pos + 8
            if group == 0xFFFE:
                raise MalformedDatasetError(f"unexpected ({group:04X},{element:04X}) at byte {pos}")
            if depth == 0 and self.header_end is None and (group, element) >= _PIXEL_DATA:
                self.header_end = pos
            vr, length, header = self._element_header(pos, end, implicit)
            pos += header
            if length == UNDEFINED_LENGTH:
                if not implicit and vr not in (b"SQ", b"OB", b"OW", b"UN"):
                    raise MalformedDatasetError(
                        f"undefined length on VR {vr.decode('ascii', 'replace')} "
                        f"({group:04X},{element:04X})"
                    )
                nested_implicit = implicit or vr == b"UN"
                pos = self.items(pos, end, nested_implicit, depth + 1, defined_end=None)
            else:
                self._need(pos, length, end, f"the value of ({group:04X},{element:04X})")
                if vr == b"SQ":
                    self.items(pos, pos + length, implicit, depth + 1, defined_end=pos + length)
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

    def items(self, pos: int, end: int, implicit: bool, depth: int, defined_end: int | None) -> int:
        """Walk the items of a sequence (or fragments of encapsulated pixel data)."""
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
                pos = self.dataset(pos, end, implicit, depth, in_item=True)
            else:
                self._need(pos, length, end, "an item value")
                pos += length
        if defined_end is None:
            raise MalformedDatasetError("a sequence of undefined length has no sequence delimiter")
        return pos


def check_complete(data: bytes | memoryview, implicit_vr: bool, little_endian: bool) -> int:
    """Raise ``MalformedDatasetError`` unless ``data`` is a whole data set in that encoding.

    Returns the length of the header: the offset of the Pixel Data element (or of the
    first element after it), or the whole length when there is none.
    """
    walker = _Walker(data, implicit_vr, little_endian)
    size = len(walker.data)
    if size == 0:
        raise MalformedDatasetError("the data set is empty")
    walker.dataset(0, size, implicit_vr, depth=0, in_item=False)
    return size if walker.header_end is None else walker.header_end
