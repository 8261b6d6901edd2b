"""H.264 / H.265 NAL unit plumbing for joining copied and re-encoded packets in one stream.

Copied packets keep the source's bytes and refer to the parameter sets in the source's extradata (avcC /
hvcC). Re-encoded packets come from an encoder without global headers, so each keyframe carries its own
parameter sets in Annex B form; they are rewritten with the source's NAL length prefix. After a re-encoded
stretch the decoder holds the encoder's parameter sets, so the source's are put back in front of the next
copied keyframe.
"""

from __future__ import annotations

__all__ = ["annexb_to_length_prefixed", "parameter_sets", "split_annexb"]


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
