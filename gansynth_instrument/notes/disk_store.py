"""The note cache's disk store: note files that outlive a session, checksummed and size-capped.

One file per note, named by a hash of its ``NoteKey``: magic, a JSON header, the int16 samples and
a SHA-256 of all of it. Files are written atomically; a corrupt one is deleted when read; past
``max_bytes`` the least recently used go first. A write failure (unwritable dir, full disk)
switches writing off with one warning; reading goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from gansynth_instrument.errors import CacheError, OutputError
from gansynth_instrument.fileio import atomic_path
from gansynth_instrument.notes.note import Note

logger = logging.getLogger("gansynth_instrument.notes.cache")  # one logger for the whole note cache

DEFAULT_CACHE_DIR = Path(platformdirs.user_cache_dir("gansynth-instrument")) / "notes"
DEFAULT_MAX_DISK_BYTES = 2 * 1024**3  # ≈ 87 fully cached presets at 48 kHz
STALE_TEMP_S = 3600.0  # a temp file this old is no write in progress, just a crash's leftover

_MAGIC = b"GSNOTE\x00\x01"
_HEADER_LEN = struct.Struct("<I")
_CHECKSUM_BYTES = hashlib.sha256().digest_size
_NOTE_SUFFIX = ".note"


def _is_note_file(name: str) -> bool:
    return name.endswith(_NOTE_SUFFIX) and not name.startswith(".")


def _is_temp_file(name: str) -> bool:
    """atomic_path's temporaries (".<stem>.<random>.tmp.note"), left behind only by a crash."""
    return name.startswith(".") and ".tmp" in name


@dataclass(frozen=True)
class NoteKey:
    """Identity of one cached note: another model, latent, pitch or output rate is another note."""

    model_digest: str
    timbre: str
    pitch: int
    sample_rate: int

    def file_name(self) -> str:
        """Disk file name: a hash of the whole key, so any digest format gives a safe name."""
        text = f"{self.model_digest}\n{self.timbre}\n{self.pitch}\n{self.sample_rate}"
        return hashlib.sha256(text.encode()).hexdigest()[:32] + _NOTE_SUFFIX


class _CorruptEntry(Exception):
    """A disk entry failed a check; the message says which."""


def _encode(key: NoteKey, note: Note) -> tuple[bytes, memoryview, bytes]:
    """Layout: magic | u32 header length | JSON header | int16 LE samples | sha256 of all before.

    Returned in three pieces, written one after the other, so the samples are never copied.
    """
    header = json.dumps(
        {
            "model_digest": key.model_digest,
            "timbre": key.timbre,
            "pitch": key.pitch,
            "sample_rate": key.sample_rate,
            "gain": note.gain,
            "reference": note.reference,
            "frames": len(note.pcm),
        }
    ).encode()
    prefix = _MAGIC + _HEADER_LEN.pack(len(header)) + header
    samples = memoryview(np.ascontiguousarray(note.pcm, dtype="<i2")).cast("B")
    checksum = hashlib.sha256(prefix)
    checksum.update(samples)
    return prefix, samples, checksum.digest()


def _decode_header(data: bytes) -> tuple[dict, int]:
    """(header, offset of the samples); raises _CorruptEntry."""
    start = len(_MAGIC) + _HEADER_LEN.size
    if len(data) < start or not data.startswith(_MAGIC):
        raise _CorruptEntry("not a note file (bad magic)")
    (header_len,) = _HEADER_LEN.unpack_from(data, len(_MAGIC))
    try:
        header = json.loads(data[start : start + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _CorruptEntry(f"unreadable header ({err})") from err
    if not isinstance(header, dict):
        raise _CorruptEntry("unreadable header")
    return header, start + header_len


def _decode(data: bytes, key: NoteKey) -> Note:
    """Check magic, checksum, key and length, then wrap the samples without copying."""
    if len(data) < len(_MAGIC) + _HEADER_LEN.size + _CHECKSUM_BYTES:
        raise _CorruptEntry(f"truncated ({len(data)} bytes)")
    body, checksum = data[:-_CHECKSUM_BYTES], data[-_CHECKSUM_BYTES:]
    if hashlib.sha256(body).digest() != checksum:
        raise _CorruptEntry("checksum mismatch")
    header, offset = _decode_header(body)
    stored = tuple(header.get(k) for k in ("model_digest", "timbre", "pitch", "sample_rate"))
    if stored != (key.model_digest, key.timbre, key.pitch, key.sample_rate):
        raise _CorruptEntry("holds another note (key mismatch)")
    frames, gain = header.get("frames"), header.get("gain")
    if not isinstance(frames, int) or (len(body) - offset) != 2 * frames:
        raise _CorruptEntry("sample count does not match the header")
    if not isinstance(gain, float) or not math.isfinite(gain) or gain <= 0:
        raise _CorruptEntry(f"bad gain {gain!r}")
    reference = header.get("reference", 0.0)  # absent in files written before levelling
    if not isinstance(reference, float) or not math.isfinite(reference) or reference < 0:
        raise _CorruptEntry(f"bad reference {reference!r}")
    pcm = np.frombuffer(data, dtype="<i2", count=frames, offset=offset).astype(np.int16, copy=False)
    pcm.flags.writeable = False
    return Note(pcm, gain, key.pitch, key.sample_rate, reference)


@dataclass(frozen=True)
class DiskSummary:
    """What ``cache info`` prints."""

    path: Path
    entries: int
    total_bytes: int
    models: int
    timbres: int


class DiskStore:
    """Persistent note files: checksummed, written atomically, size-capped (least recently used
    go first). A write failure (unwritable dir, full disk) switches writing off with one warning;
    reading goes on.
    """

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_DISK_BYTES) -> None:
        if max_bytes <= 0:
            raise CacheError(f"cache size cap must be > 0 bytes, got {max_bytes}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.writable = True
        self._read_warned = False
        self._bytes_on_disk: int | None = None  # counted on the first write

    def load(self, key: NoteKey) -> Note | None:
        """The stored note, or None when absent or corrupt (then the file is deleted)."""
        file = self.path / key.file_name()
        try:
            data = file.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            if not self._read_warned:  # once: an unreadable dir would otherwise warn per note
                self._read_warned = True
                logger.warning(
                    "note cache: cannot read %s (%s); rendering notes instead", file, err
                )
            return None
        try:
            note = _decode(data, key)
        except _CorruptEntry as err:
            logger.warning("note cache: %s is corrupt (%s); deleting it", file, err)
            self._remove(file)
            return None
        # Mark as recently used: eviction takes the oldest-used first (read-only store: by age).
        with contextlib.suppress(OSError):
            os.utime(file)
        return note

    def save(self, key: NoteKey, note: Note) -> None:
        """Write atomically (temp file + os.replace); evict the oldest when over the cap."""
        if not self.writable:
            return
        pieces = _encode(key, note)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path / key.file_name()) as temp, temp.open("wb") as f:
                for piece in pieces:
                    f.write(piece)
        except (OSError, OutputError) as err:
            self.writable = False
            logger.warning(
                "note cache: cannot write to %s (%s); keeping notes in memory only", self.path, err
            )
            return
        if self._bytes_on_disk is None:
            self._bytes_on_disk = sum(size for _, size, _ in self._entries())
        else:
            self._bytes_on_disk += sum(len(piece) for piece in pieces)
        if self._bytes_on_disk > self.max_bytes:
            self._evict()

    def summary(self) -> DiskSummary:
        """Entries, bytes, and how many models / timbres they belong to (reads each header only)."""
        models: set[str] = set()
        timbres: set[tuple[str, str]] = set()
        entries = self._entries()
        for file, _, _ in entries:
            try:
                with file.open("rb") as f:
                    header, _ = _decode_header(f.read(4096))
            except (OSError, _CorruptEntry):
                continue
            models.add(str(header.get("model_digest")))
            timbres.add((str(header.get("model_digest")), str(header.get("timbre"))))
        return DiskSummary(
            path=self.path,
            entries=len(entries),
            total_bytes=sum(size for _, size, _ in entries),
            models=len(models),
            timbres=len(timbres),
        )

    def clear(self) -> tuple[int, int]:
        """Delete every note file (and leftover temp files); returns (files, bytes) removed."""
        removed = removed_bytes = 0
        if not self.path.is_dir():
            return 0, 0
        for entry in os.scandir(self.path):
            if entry.is_file() and (_is_note_file(entry.name) or _is_temp_file(entry.name)):
                size = entry.stat().st_size
                if self._remove(Path(entry.path)):
                    removed, removed_bytes = removed + 1, removed_bytes + size
        self._bytes_on_disk = None
        return removed, removed_bytes

    def _entries(self) -> list[tuple[Path, int, float]]:
        """(path, bytes, mtime) of every note file (stale temp files go); an absent dir has none."""
        try:
            scan = list(os.scandir(self.path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        entries = []
        stale_before = time.time() - STALE_TEMP_S
        for entry in scan:
            note, temp = _is_note_file(entry.name), _is_temp_file(entry.name)
            if not (note or temp):
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:  # another process evicted or renamed it meanwhile
                continue
            if note:
                entries.append((Path(entry.path), st.st_size, st.st_mtime))
            elif st.st_mtime < stale_before:  # left by a process killed mid-write
                self._remove(Path(entry.path))
        return entries

    def _evict(self) -> None:
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        for file, size, _ in entries:
            if total <= self.max_bytes:
                break
            if self._remove(file):
                total -= size
        self._bytes_on_disk = total

    @staticmethod
    def _remove(file: Path) -> bool:
        try:
            file.unlink()
        except FileNotFoundError:
            return False
        except OSError as err:
            logger.warning("note cache: cannot delete %s (%s)", file, err)
            return False
        return True
