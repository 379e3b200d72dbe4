"""TensorFlow's masked CRC32C, the checksum of TFRecord frames and of checkpoint bundles.

TensorFlow (like LevelDB) stores CRCs "masked", rotated and offset, so that a CRC of data that
itself holds CRCs does not degenerate (``crc32c::Mask``).
"""

from __future__ import annotations

import google_crc32c

CRC_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    """CRC32C of ``data`` in TensorFlow's masked form."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xFFFFFFFF
