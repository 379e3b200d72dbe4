"""Reader for TensorFlow's V2 checkpoint bundle (``model.ckpt-N.index`` + ``.data-*``), no TF.

Format (tensorflow/core/util/tensor_bundle): the ``.index`` file is an uncompressed LevelDB-style
table (blocks of prefix-compressed key/value entries, an index block, a 48-byte footer ending in
the table magic). Key ``""`` holds a ``BundleHeaderProto`` (shard count, endianness); every other
key is a variable name whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size).
The tensor's bytes are ``size`` raw bytes at ``offset`` in ``<prefix>.data-<shard>-of-<shards>``.

Every handle, length, offset and size is checked against the file it points into before anything
is read, so a truncated or hostile file raises ``CheckpointError`` instead of reading garbage.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansynth_instrument.checksum import masked_crc32c
from gansynth_instrument.errors import CheckpointError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
BLOCK_TRAILER_BYTES = 5  # 1 byte compression type + 4 bytes masked CRC32C

# TensorFlow DataType enum → numpy dtype (little-endian); the numeric types a checkpoint holds.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    19: np.dtype("<f2"),  # DT_HALF
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one variable's bytes live (checked against the data file when the bundle opens)."""

    name: str
    dtype: np.dtype | None  # None: a type we do not read (strings, resources)
    dtype_code: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    masked_crc32c: int | None  # of the tensor bytes; None when the writer stored none


class _Cursor:
    """Bounds-checked reading of varints and byte runs from ``data[pos:end]``."""

    def __init__(self, data: bytes | memoryview, pos: int, end: int, where: str) -> None:
        self.data, self.pos, self.end, self.where = data, pos, end, where

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: corrupt checkpoint ({what})")

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= self.end:
                raise self.fail("varint runs past the end of its block")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift >= 70:
                raise self.fail("varint longer than 10 bytes")

    def take(self, n: int) -> memoryview:
        if n < 0 or n > self.end - self.pos:
            raise self.fail(f"{n}-byte field runs past the end of its block")
        out = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return out


class _Message:
    """One decoded protobuf message with typed access; a field of the wrong wire type is an error.

    Varints and fixed ints are kept as ints, length-delimited fields as byte views; that is all
    BundleHeaderProto / BundleEntryProto / TensorShapeProto need.
    """

    def __init__(self, buf: memoryview, where: str) -> None:
        self.where = where
        self.fields: dict[int, list[int | memoryview]] = {}
        cur = _Cursor(buf, 0, len(buf), where)
        while cur.pos < cur.end:
            tag = cur.varint()
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value: int | memoryview = cur.varint()
            elif wire == 1:
                value = struct.unpack("<Q", cur.take(8))[0]
            elif wire == 2:
                value = cur.take(cur.varint())
            elif wire == 5:
                value = struct.unpack("<I", cur.take(4))[0]
            else:
                raise cur.fail(f"unsupported protobuf wire type {wire}")
            self.fields.setdefault(number, []).append(value)

    def has(self, number: int) -> bool:
        return number in self.fields

    def int(self, number: int, default: int = 0) -> int:
        """Last value of an int64/enum/fixed field (protobuf: the last one wins)."""
        values = self.fields.get(number)
        if not values:
            return default
        if not isinstance(values[-1], int):
            raise CheckpointError(f"{self.where}: corrupt checkpoint (field {number} not a number)")
        return values[-1] - (1 << 64) if values[-1] >= 1 << 63 else values[-1]

    def messages(self, number: int) -> list[_Message]:
        """Every value of a repeated message field, decoded."""
        out = []
        for value in self.fields.get(number, []):
            if not isinstance(value, memoryview):
                raise CheckpointError(
                    f"{self.where}: corrupt checkpoint (field {number} not a message)"
                )
            out.append(_Message(value, self.where))
        return out


def _read_block(data: bytes, offset: int, size: int, where: str) -> list[tuple[bytes, memoryview]]:
    """Entries of the table block at ``data[offset:offset+size]`` (+ trailer), keys expanded."""
    if offset < 0 or size < 4 or offset + size + BLOCK_TRAILER_BYTES > len(data):
        raise CheckpointError(
            f"{where}: corrupt checkpoint index (block {offset}+{size} outside the "
            f"{len(data)}-byte file)"
        )
    if data[offset + size] != 0:
        raise CheckpointError(
            f"{where}: compressed checkpoint index (type {data[offset + size]}) is not supported"
        )
    (num_restarts,) = struct.unpack_from("<I", data, offset + size - 4)
    entries_end = offset + size - 4 * (num_restarts + 1)
    if num_restarts == 0 or entries_end < offset:
        raise CheckpointError(f"{where}: corrupt checkpoint index (bad restart count)")
    cur = _Cursor(data, offset, entries_end, where)
    entries: list[tuple[bytes, memoryview]] = []
    key = b""
    while cur.pos < cur.end:
        shared, unshared, value_len = cur.varint(), cur.varint(), cur.varint()
        if shared > len(key):
            raise cur.fail("key shares more bytes than the previous key has")
        key = key[:shared] + bytes(cur.take(unshared))
        entries.append((key, cur.take(value_len)))
    return entries


def _read_table(data: bytes, where: str) -> list[tuple[bytes, memoryview]]:
    """All key/value pairs of a LevelDB-style table held in ``data``."""
    if len(data) < FOOTER_BYTES:
        raise CheckpointError(f"{where}: not a checkpoint index ({len(data)} bytes, too short)")
    (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{where}: not a checkpoint index (wrong magic number)")
    footer = _Cursor(data, len(data) - FOOTER_BYTES, len(data) - 8, where)
    footer.varint(), footer.varint()  # metaindex handle: unused by bundles
    index_offset, index_size = footer.varint(), footer.varint()
    pairs: list[tuple[bytes, memoryview]] = []
    next_free = 0  # data blocks must not overlap: bounds the work to the file's size
    for _, handle in _read_block(data, index_offset, index_size, where):
        cur = _Cursor(handle, 0, len(handle), where)
        offset, size = cur.varint(), cur.varint()
        if offset < next_free:
            raise CheckpointError(f"{where}: corrupt checkpoint index (overlapping blocks)")
        pairs.extend(_read_block(data, offset, size, where))
        next_free = offset + size + BLOCK_TRAILER_BYTES
    return pairs


def _parse_entry(name: str, value: memoryview, where: str) -> TensorEntry:
    entry = _Message(value, where)
    if entry.has(7):
        raise CheckpointError(
            f"{where}: variable '{name}' is partitioned into slices, which is not supported"
        )
    dims: list[int] = []
    for shape in entry.messages(2):
        if shape.int(3):
            raise CheckpointError(f"{where}: variable '{name}' has an unknown rank")
        dims.extend(dim.int(1) for dim in shape.messages(2))
    if any(d < 0 for d in dims):
        raise CheckpointError(f"{where}: variable '{name}' has a negative dimension {dims}")
    code = entry.int(1)
    return TensorEntry(
        name=name,
        dtype=DTYPES.get(code),
        dtype_code=code,
        shape=tuple(dims),
        shard=entry.int(3),
        offset=entry.int(4),
        size=entry.int(5),
        masked_crc32c=entry.int(6) if entry.has(6) else None,
    )


class TensorBundle:
    """An opened V2 checkpoint: ``entries`` by variable name, ``read(name)`` → numpy array.

    Opening parses and validates the whole index (every numeric entry's offset + size must lie
    inside its data shard and match its shape); reading then only fetches the bytes asked for.
    """

    def __init__(self, prefix: Path) -> None:
        self.prefix = Path(prefix)
        index_path = self.prefix.with_name(self.prefix.name + ".index")
        where = str(index_path)
        try:
            data = index_path.read_bytes()
        except OSError as err:
            raise CheckpointError(f"{where}: cannot read ({err.strerror})") from None
        num_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        for key, value in _read_table(data, where):
            if key == b"":
                header = _Message(value, where)
                num_shards = header.int(1)
                if header.int(2) != 0:
                    raise CheckpointError(f"{where}: big-endian checkpoints are not supported")
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"{where}: variable name {key[:40]!r} is not UTF-8") from None
            self.entries[name] = _parse_entry(name, value, where)
        if num_shards < 1:
            raise CheckpointError(f"{where}: corrupt checkpoint header ({num_shards} shards)")
        self.shard_paths = [
            self.prefix.with_name(f"{self.prefix.name}.data-{i:05d}-of-{num_shards:05d}")
            for i in range(num_shards)
        ]
        self._check_entries(where)

    def _check_entries(self, where: str) -> None:
        sizes: dict[int, int] = {}
        for entry in self.entries.values():
            if entry.dtype is None:
                continue  # strings etc.: never read, so their layout does not matter
            if not 0 <= entry.shard < len(self.shard_paths):
                raise CheckpointError(
                    f"{where}: variable '{entry.name}' is in shard {entry.shard} of "
                    f"{len(self.shard_paths)}"
                )
            expected = math.prod(entry.shape) * entry.dtype.itemsize
            if entry.size != expected:
                raise CheckpointError(
                    f"{where}: variable '{entry.name}' has {entry.size} bytes, its shape "
                    f"{list(entry.shape)} needs {expected}"
                )
            if entry.shard not in sizes:
                path = self.shard_paths[entry.shard]
                try:
                    sizes[entry.shard] = path.stat().st_size
                except OSError as err:
                    raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
            if entry.offset < 0 or entry.offset + entry.size > sizes[entry.shard]:
                raise CheckpointError(
                    f"{self.shard_paths[entry.shard]}: truncated or corrupt: variable "
                    f"'{entry.name}' needs bytes {entry.offset}..{entry.offset + entry.size}, the "
                    f"file has {sizes[entry.shard]}"
                )

    def read(self, name: str) -> np.ndarray:
        """The variable ``name`` as a native-endian numpy array of its stored shape."""
        entry = self.entries.get(name)
        if entry is None:
            raise CheckpointError(f"{self.prefix}: no variable '{name}' in the checkpoint")
        if entry.dtype is None:
            raise CheckpointError(
                f"{self.prefix}: variable '{name}' has TensorFlow dtype {entry.dtype_code}, "
                "which is not a number type"
            )
        path = self.shard_paths[entry.shard]
        try:
            with path.open("rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
        if len(raw) != entry.size:
            raise CheckpointError(f"{path}: truncated while reading variable '{name}'")
        if entry.masked_crc32c is not None and masked_crc32c(raw) != entry.masked_crc32c:
            raise CheckpointError(f"{path}: corrupt: variable '{name}' fails its CRC32C checksum")
        array = np.frombuffer(raw, dtype=entry.dtype).reshape(entry.shape)
        return array.astype(entry.dtype.newbyteorder("="), copy=True)
