"""Small file writers shared by the data-format tests (imported as ``data_helpers``)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from PIL import Image


def write_jsonl(path: Path, records: list) -> Path:
    """One ``json.dumps`` line per record (ensure_ascii=False), as Data-Juicer exports."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, value) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_jpeg(path: Path, size: tuple[int, int] = (24, 16), color: tuple[int, int, int] = (200, 30, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=90)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, width: int, height: int, bit_depth: int, color_type: int, pixels: bytes) -> Path:
    """A PNG written byte by byte (PIL cannot write 16-bit colour): ``pixels`` are the raw
    scanlines without filter bytes (filter 0 is added); empty ``pixels`` give a header-only file
    whose image data is missing, which no decoder can read."""
    row = len(pixels) // height if pixels else 0
    scanlines = b"".join(b"\x00" + pixels[r * row:(r + 1) * row] for r in range(height)) if pixels else b""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(scanlines)) + _png_chunk(b"IEND", b""))
    return path
