"""Test helper: write TF V2 checkpoint bundles, to build broken or unusual checkpoints on purpose.

Writes what TensorFlow's BundleWriter writes for one shard (an uncompressed LevelDB-style table
of BundleEntryProto with each tensor's CRC32C + the raw little-endian tensor bytes), without table
block checksums: our reader does not check those, so this helper is for our reader only.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from gansynth_instrument.checksum import masked_crc32c
from gansynth_instrument.export.bundle import DTYPES, TABLE_MAGIC

DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block without prefix compression (one restart point) + its 5-byte trailer."""
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1) + b"\x00" + b"\x00\x00\x00\x00"


def write_bundle(
    prefix: Path,
    tensors: dict[str, np.ndarray],
    *,
    layout: dict[str, tuple[int, int]] | None = None,
) -> None:
    """Write ``<prefix>.index`` + ``<prefix>.data-00000-of-00001`` holding ``tensors``.

    ``layout`` overrides (offset, size) of named entries in the index, for hostile-file tests.
    """
    prefix = Path(prefix)
    data = bytearray()
    entries: list[tuple[bytes, bytes]] = [(b"", _field(1, 1) + _field(3, _field(1, 1)))]
    for name in sorted(tensors, key=lambda n: n.encode()):
        array = np.asarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"))
        offset, size = (layout or {}).get(name, (len(data), little.nbytes))
        shape = b"".join(_field(2, _field(1, d)) for d in array.shape)
        proto = (
            _field(1, DTYPE_CODES[array.dtype.newbyteorder("<")])
            + _field(2, shape)
            + _field(4, offset)
            + _field(5, size)
            + _varint(6 << 3 | 5)
            + struct.pack("<I", masked_crc32c(little.tobytes()))
        )
        entries.append((name.encode(), proto))
        data += little.tobytes()
    data_block = _block(entries)
    index_offset = len(data_block)
    index_block = _block([(entries[-1][0] + b"\xff", _varint(0) + _varint(len(data_block) - 5))])
    meta_offset = index_offset + len(index_block)
    meta_block = _block([])
    footer = (
        _varint(meta_offset)
        + _varint(len(meta_block) - 5)
        + _varint(index_offset)
        + _varint(len(index_block) - 5)
    )
    footer = footer.ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    prefix.with_name(prefix.name + ".index").write_bytes(
        data_block + index_block + meta_block + footer
    )
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
