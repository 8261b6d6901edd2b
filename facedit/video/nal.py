"""H.264 / H.265 NAL unit plumbing for joining copied and re-encoded packets in one stream.

Copied packets keep the source's bytes and refer to the parameter sets in the source's extradata (avcC /
hvcC). Re-encoded packets come from an encoder without global headers, so each keyframe carries its own
parameter sets in Annex B form; they are rewritten with the source's NAL length prefix. After a re-encoded
stretch the decoder holds the encoder's parameter sets, so the source's are put back in front of the next
copied keyframe.

Open GOPs: the leading pictures of an open GOP (decoded after its keyframe, shown before it) refer back into
the GOP before. When that GOP is re-encoded, an H.265 CRA's leading pictures (RASL / RADL, which no trailing
picture may refer to) are dropped from the copy and re-encoded with the stretch before, which ends with an
end-of-sequence NAL so that the CRA starts a new coded video sequence as at a random access. H.264 has no such
splice point (a recovery-point I-frame cannot start a sequence), so there the open GOPs are re-encoded up to
the next IDR picture.
"""

from __future__ import annotations

__all__ = [
    "HEVC_END_OF_SEQUENCE",
    "annexb_to_length_prefixed",
    "h264_idr",
    "hevc_cra",
    "hevc_leading",
    "nal_units",
    "parameter_sets",
    "split_annexb",
]


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B byte stream, without start codes."""
    units: list[bytes] = []
    i, n, start = 0, len(data), None
    while i + 3 <= n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            if start is not None:
                units.append(data[start:i].rstrip(b"\x00"))
            i += 3
            start = i
        else:
            i += 1
    if start is not None:
        units.append(data[start:])
    return [u for u in units if u]


def annexb_to_length_prefixed(data: bytes, length_size: int) -> bytes:
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in split_annexb(data))


def nal_units(data: bytes, length_size: int | None) -> list[bytes]:
    """NAL units of a packet: length-prefixed (MP4 / MKV with avcC / hvcC) or Annex B (``length_size`` None)."""
    if length_size is None:
        return split_annexb(data)
    units, pos = [], 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        units.append(data[pos + length_size : pos + length_size + size])
        pos += length_size + size
    return [u for u in units if u]


HEVC_END_OF_SEQUENCE = bytes([36 << 1, 1])  # EOS_NUT, layer 0, temporal id 0


def h264_idr(data: bytes, length_size: int | None) -> bool:
    """An H.264 packet holding an IDR picture (where a stream may start or be joined)."""
    return any(unit[0] & 0x1F == 5 for unit in nal_units(data, length_size))


def hevc_types(data: bytes, length_size: int | None) -> list[int]:
    """NAL unit types of an H.265 packet."""
    return [(unit[0] >> 1) & 0x3F for unit in nal_units(data, length_size)]


def hevc_cra(data: bytes, length_size: int | None) -> bool:
    """An H.265 packet whose picture is a CRA (the IRAP of an open GOP)."""
    return 21 in hevc_types(data, length_size)


def hevc_leading(data: bytes, length_size: int | None) -> bool:
    """An H.265 packet whose slices are all RADL / RASL: leading pictures that trailing ones never refer to."""
    slices = [t for t in hevc_types(data, length_size) if t < 32]
    return bool(slices) and all(6 <= t <= 9 for t in slices)


def parameter_sets(codec: str, extradata: bytes | None) -> tuple[int, list[bytes]] | None:
    """(NAL length size, parameter-set NAL units) from avcC / hvcC extradata; None for Annex B streams."""
    if not extradata or extradata[0] != 1:
        return None
    if codec == "h264":
        length_size = (extradata[4] & 3) + 1
        units, pos = [], 5
        for count_mask in (0x1F, 0xFF):
            count = extradata[pos] & count_mask
            pos += 1
            for _ in range(count):
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                units.append(extradata[pos + 2 : pos + 2 + size])
                pos += 2 + size
        return length_size, units
    if codec == "hevc":
        length_size = (extradata[21] & 3) + 1
        units, pos = [], 23
        for _ in range(extradata[22]):
            count = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
            pos += 3
            for _ in range(count):
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                units.append(extradata[pos + 2 : pos + 2 + size])
                pos += 2 + size
        return length_size, units
    raise ValueError(f"codec: parameter sets are read for h264 and hevc only, got {codec!r}")
