"""TFRecord files of ``tf.train.Example`` records, written by hand (no TensorFlow needed): the
protobuf wire format of an Example's features, and TFRecord's framing with masked CRC32C.
"""

from __future__ import annotations

import struct

import numpy as np

from gansynth_instrument.checksum import masked_crc32c


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 → two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | list[int] | np.ndarray) -> bytes:
    """``tf.train.Feature``: bytes_list (1), float_list (2) or int64_list (3), packed values."""
    if isinstance(value, bytes):
        return _field(1, _field(1, value))
    if isinstance(value, np.ndarray):
        return _field(2, _field(1, value.astype("<f4").tobytes()))
    return _field(3, _field(1, b"".join(_varint(v) for v in value)))


def example_bytes(features: dict[str, bytes | list[int] | np.ndarray]) -> bytes:
    """A serialised ``tf.train.Example`` (Features = map<string, Feature> as field 1)."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _feature(value)))
        for key, value in features.items()
    )
    return _field(1, entries)


def tfrecord_frame(record: bytes) -> bytes:
    """TFRecord framing: length u64, masked CRC32C of it, the record, masked CRC32C of it."""
    length = struct.pack("<Q", len(record))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + record
        + struct.pack("<I", masked_crc32c(record))
    )
