"""Real media files for tests: images drawn with Pillow, MP4/MOV built box by box."""
from __future__ import annotations

import io
import random
import struct
from pathlib import Path

from PIL import Image


def image_bytes(fmt: str = "PNG", seed: int = 0, size: tuple[int, int] = (32, 24), noise: bool = False) -> bytes:
    """An image in `fmt` (PNG, JPEG, WEBP, GIF); different seeds give different bytes.

    With `noise` every pixel is random, so the file is about 3 bytes a pixel even compressed.
    """
    rng = random.Random(seed)
    if noise:
        image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def png_of_size(total: int, seed: int = 0) -> bytes:
    """A readable PNG of about `total` bytes (random pixels do not compress)."""
    side = max(int((total / 3) ** 0.5), 1)
    return image_bytes("PNG", seed, (side, side), noise=True)


def _box(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), name) + payload


def video_bytes(total: int = 4096, brand: bytes = b"isom", seed: int = 0) -> bytes:
    """An MP4 (or a MOV with brand `qt  `) of `total` bytes: ftyp, moov and an mdat of filler."""
    head = _box(b"ftyp", brand + b"\0\0\2\0" + brand) + _box(b"moov", _box(b"mvhd", bytes(100)))
    filler = random.Random(seed).randbytes(max(total - len(head) - 8, 0))
    return head + _box(b"mdat", filler)


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path
