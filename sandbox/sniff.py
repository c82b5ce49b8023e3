"""What uploaded bytes are: image type and size (PNG, GIF, JPEG, WEBP), video container (MP4, MOV).

Read from the first bytes only, never from a file name, as X does; used when an upload
is made (the media type it answers) and when it is finished (an image's `w` and `h`).
"""
from __future__ import annotations

import struct
from typing import Any


def image_info(data: bytes) -> dict[str, Any] | None:
    """PNG, GIF, JPEG or WEBP type and size from the first bytes, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return {"image_type": "image/png", "w": width, "h": height}
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return {"image_type": "image/gif", "w": width, "h": height}
    if data[:2] == b"\xff\xd8":
        return _jpeg_info(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_info(data)
    return None


def _jpeg_info(data: bytes) -> dict[str, Any] | None:
    """Walk the JPEG markers to the first SOF frame, which holds the size."""
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        length = struct.unpack(">H", data[index + 2:index + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5:index + 9])
            return {"image_type": "image/jpeg", "w": width, "h": height}
        index += 2 + length
    return None


def _webp_info(data: bytes) -> dict[str, Any] | None:
    """A WEBP's size from its first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended)."""
    chunk = data[12:16]
    size: tuple[int, int] | None = None
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        size = (width & 0x3FFF, height & 0x3FFF)
    elif chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    elif chunk == b"VP8X" and len(data) >= 30:
        size = (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    return {"image_type": "image/webp", "w": size[0], "h": size[1]} if size else None


def video_type(data: bytes) -> str | None:
    """MP4 or QuickTime (MOV) from the first box, or None: `ftyp` names the brand; old MOVs start bare."""
    box = data[4:8]
    if box == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if box in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    return None
