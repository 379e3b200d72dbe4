"""Note cache: every sound the instrument plays is a finished note from here.

A note is keyed by (model digest, timbre = latent digest, MIDI pitch, output sample rate). A
background renderer thread fills the cache: it takes the most urgent pending notes (``Priority``),
batches up to ``batch_size`` of one priority class into a single ``model.generate`` call, resamples
16 kHz → output rate once with soxr, and stores each note as read-only int16 plus one float gain.
Where generate + resample + quantize run is the ``renderer``: in that thread (``"thread"``), or in
a worker process that loads the model again (``"process"``: that work then takes none of this
process's GIL, which the audio callback needs); the bookkeeping is the same for both.
Finished notes also go to a persistent, size-capped, checksummed disk store, so a restart or a
preset switch does not render them again.

Threads: ``lookup``/``nearest`` are plain dict reads and never wait; ``request``/``played``/
``progress`` take a lock the renderer only holds for bookkeeping (never while rendering or doing
I/O). Within a NoteCache only the renderer thread touches the disk store or logs.

Memory: 61 pitches x 4 s x 48 kHz x 2 bytes = 23.4 MB per fully cached preset (float32: 46.9 MB).
The in-memory notes are capped (``max_memory_bytes``): past the cap the renderer drops the least
recently used notes (by lookup/publish time), those of recently played timbres last. A dropped
note is still on disk, so the next request for it is a disk read, not a render. Dropping only
removes the cache's reference: a sounding voice keeps its own.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import enum
import hashlib
import heapq
import itertools
import json
import logging
import math
import mmap
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np
import platformdirs
import soxr
from tqdm import tqdm

from gansynth_instrument.errors import CacheError, ModelError, OutputError
from gansynth_instrument.fileio import anonymous_file, atomic_path, check_writable_dir
from gansynth_instrument.latent import latent_digest, random_latent

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(platformdirs.user_cache_dir("gansynth-instrument")) / "notes"
DEFAULT_MAX_DISK_BYTES = 2 * 1024**3  # ≈ 87 fully cached presets at 48 kHz
DEFAULT_MAX_MEMORY_BYTES = 512 * 1024**2  # ≈ 22 fully cached presets at 48 kHz
MIB = 1024**2
DEFAULT_BATCH_SIZE = 4  # bounds how long a WAITING note can queue behind a batch already rendering
NEAR_SEMITONES = 2  # a played pitch pulls this many semitones either side forward (Priority.NEAR)
RECENT_PLAYED = 16  # how many played (timbre, pitch) pairs steer later requests
INT16_FULL_SCALE = 32767
STALE_TEMP_S = 3600.0  # a temp file this old is no write in progress, just a crash's leftover
RESAMPLE_QUALITY = "HQ"  # soxr's "high quality" recipe (20-bit precision)
RENDERERS = ("thread", "process")
# The renderer process yields the CPU to everything else: on 2 cores, a parent thread that holds
# the GIL must not wait behind the model, or the audio callback waits behind that thread.
WORKER_NICENESS = 19
MAX_WORKER_DEATHS = 3  # a renderer process that dies this often in a row is not restarted
WORKER_EXIT_WAIT_S = 5.0  # after SIGTERM; then SIGKILL

_MAGIC = b"GSNOTE\x00\x01"
_HEADER_LEN = struct.Struct("<I")
_CHECKSUM_BYTES = hashlib.sha256().digest_size
_NOTE_SUFFIX = ".note"


def _is_note_file(name: str) -> bool:
    return name.endswith(_NOTE_SUFFIX) and not name.startswith(".")


def _is_temp_file(name: str) -> bool:
    """atomic_path's temporaries (".<stem>.<random>.tmp.note"), left behind only by a crash."""
    return name.startswith(".") and ".tmp" in name


class Priority(enum.IntEnum):
    """How soon a note is needed; lower = sooner."""

    WAITING = 0  # someone pressed the key and hears nothing (or a stand-in) until it is ready
    NEAR = 1  # close to a recently played pitch: likely next
    BACKGROUND = 2  # the rest of a preset, filled while nothing else is pending


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


@dataclass(frozen=True, eq=False)
class Note:
    """A finished, immutable rendered note. Float amplitude = ``pcm * gain``.

    int16 with a per-note scale (peak ↦ 32767) halves memory against float32; the quantisation
    noise sits ~96 dB below the note's peak.
    """

    pcm: np.ndarray  # int16 mono at sample_rate, read-only
    gain: float
    pitch: int
    sample_rate: int

    def to_float(self) -> np.ndarray:
        """float32 copy of the waveform (allocates: not for the audio thread)."""
        return self.pcm.astype(np.float32) * np.float32(self.gain)


class NoteModel(Protocol):
    """What the cache needs from ``gansynth_instrument.model.Model``."""

    digest: str
    pitches: tuple[int, ...]
    latent_size: int
    sample_rate: int
    audio_length: int  # samples per note at sample_rate

    def generate(self, z: np.ndarray, pitches: Sequence[int] | np.ndarray) -> np.ndarray: ...


def render_notes(
    model: NoteModel, z: np.ndarray, pitches: np.ndarray, sample_rate: int
) -> list[Note]:
    """generate + resample once + quantize: all the work a renderer does, thread or process."""
    audio = np.asarray(model.generate(z, pitches), dtype=np.float32)
    if model.sample_rate != sample_rate:
        # One call for the whole batch: soxr takes [frames, channels].
        audio = soxr.resample(
            np.ascontiguousarray(audio.T), model.sample_rate, sample_rate, quality=RESAMPLE_QUALITY
        ).T
    return [
        quantize(row, int(pitch), sample_rate) for row, pitch in zip(audio, pitches, strict=True)
    ]


class _ThreadRenderer:
    """Renders in the cache's renderer thread, sharing this process's GIL with the audio."""

    def __init__(self, model: NoteModel) -> None:
        self._model = model

    def render(self, z: np.ndarray, pitches: np.ndarray, sample_rate: int) -> list[Note]:
        return render_notes(self._model, z, pitches, sample_rate)

    def interrupt(self) -> None:
        """Nothing to cut short: a thread finishes its batch."""

    def close(self) -> None:
        """Nothing held."""


def _worker_main(conn: Connection, options: tuple[str, str, int | None, str, str]) -> None:
    """The renderer process: load the model, then answer (z, pitches, rate) until the parent's
    end of the pipe closes (close(), or the parent died: no orphan keeps running).

    Replies: ("ready", None) once loaded, then ("notes", ...) (see _send_notes) or ("error",
    message).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes us
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    from gansynth_instrument.model import load_model

    path, backend, threads, precision, digest = options
    try:
        model = load_model(path, backend=backend, threads=threads, precision=precision)
        if model.digest != digest:
            raise CacheError(f"{path}: the model file changed since it was loaded")
    except Exception as err:
        conn.send(("error", str(err) or type(err).__name__))
        return
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent's end closed
        conn.send(("ready", None))
        while True:
            job = conn.recv()
            try:
                notes = render_notes(model, *job)
            except Exception as err:
                conn.send(("error", str(err) or type(err).__name__))
            else:
                _send_notes(conn, notes)


def _send_notes(conn: Connection, notes: list[Note]) -> None:
    """Send a batch as ("notes", (shape, gains)) plus a memory file holding the int16 samples.

    Why not pickle them through the pipe: the parent's read of a few MB from a socket copies it
    all in one system call, and this kernel does not preempt system calls (PREEMPT_NONE). Traced
    on the 2-core VM, that read kept a CPU for 4-5 ms while JACK's real-time threads waited to
    run there: an xrun each time. Copying out of shared memory is user-space work, preemptible.
    """
    shape = (len(notes), len(notes[0].pcm))
    fd = anonymous_file(_batch_bytes(shape), "gansynth-notes")
    try:
        with mmap.mmap(fd, _batch_bytes(shape)) as buffer:
            shared = np.frombuffer(buffer, dtype=np.int16).reshape(shape)
            for i, note in enumerate(notes):
                shared[i] = note.pcm
            del shared  # no view may outlive the mapping
        conn.send(("notes", (shape, [note.gain for note in notes])))
        send_handle(conn, fd, os.getppid())
    finally:
        os.close(fd)


def _batch_bytes(shape: tuple[int, int]) -> int:
    return shape[0] * shape[1] * np.dtype(np.int16).itemsize


def _receive_notes(conn: Connection, shape: tuple[int, int]) -> list[np.ndarray]:
    """The samples _send_notes shared: one read-only int16 array per note, copied out."""
    fd = recv_handle(conn)
    try:
        with mmap.mmap(fd, _batch_bytes(shape), access=mmap.ACCESS_READ) as buffer:
            shared = np.frombuffer(buffer, dtype=np.int16).reshape(shape)
            rows = [row.copy() for row in shared]  # each its own array: the cache frees per note
            del shared
    finally:
        os.close(fd)
    for row in rows:
        row.flags.writeable = False
    return rows


class _ProcessRenderer:
    """Renders in a spawned worker process that loads the model from its file with the same
    backend, threads and precision. Only the small latents go there and finished int16 notes
    come back (through shared memory, see _send_notes): none of the rendering takes this
    process's GIL.

    A worker that dies fails its batch with a CacheError and is started again for the next one
    (not after MAX_WORKER_DEATHS deaths in a row, or when it could not load the model).
    """

    def __init__(self, model: NoteModel) -> None:
        path = getattr(model, "path", None)
        if path is None:
            raise CacheError("renderer 'process' needs a model loaded from a file (load_model)")
        self._options = (
            str(path),
            str(getattr(model, "backend", "auto")),
            getattr(model, "threads", None),
            str(getattr(model, "precision", "f32")),
            model.digest,
        )
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._deaths = 0
        self._load_error: str | None = None
        self._stopped = False

    def render(self, z: np.ndarray, pitches: np.ndarray, sample_rate: int) -> list[Note]:
        conn = self._worker()
        try:
            conn.send((z, pitches, sample_rate))
            kind, payload = conn.recv()
            if kind == "notes":
                shape, gains = payload
                pcms = _receive_notes(conn, shape)
        except (EOFError, OSError) as err:
            raise self._died() from err
        if kind == "error":
            raise CacheError(payload)
        self._deaths = 0
        return [
            Note(pcm=pcm, gain=gain, pitch=int(pitch), sample_rate=sample_rate)
            for pcm, gain, pitch in zip(pcms, gains, pitches, strict=True)
        ]

    def _worker(self) -> Connection:
        """The running worker's pipe; starts one (and waits for its model) if there is none."""
        if self._load_error is not None:
            raise CacheError(self._load_error)
        if self._deaths >= MAX_WORKER_DEATHS:
            raise CacheError(
                f"the renderer process died {self._deaths} times in a row; not restarting it"
            )
        if self._stopped:
            raise CacheError("the renderer process was stopped")
        if self._conn is not None:
            return self._conn
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(theirs, self._options), name="note-renderer", daemon=True
        )
        process.start()
        theirs.close()  # the worker holds the only other end: its death is EOF here
        self._process, self._conn = process, ours
        try:
            kind, payload = ours.recv()
        except (EOFError, OSError) as err:
            raise self._died() from err
        if kind == "error":
            self._load_error = f"the renderer process could not load the model: {payload}"
            self._reap()
            raise CacheError(self._load_error)
        return ours

    def _died(self) -> CacheError:
        code = self._reap()
        self._deaths += 1
        if self._stopped:
            return CacheError("the renderer process was stopped")
        after = (
            "a new one renders the next batch"
            if self._deaths < MAX_WORKER_DEATHS
            else f"{self._deaths} deaths in a row: not restarting it"
        )
        return CacheError(f"the renderer process died (exit code {code}); {after}")

    def _reap(self) -> int | None:
        """Close our pipe end, end the worker (SIGTERM, then SIGKILL), wait for it: no zombie."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        process.join(WORKER_EXIT_WAIT_S if process.exitcode is None else None)
        if process.exitcode is None:
            process.terminate()
            process.join(WORKER_EXIT_WAIT_S)
        if process.exitcode is None:
            process.kill()
            process.join()
        code = process.exitcode
        process.close()
        return code

    def interrupt(self) -> None:
        """Stop the worker now (a batch in progress is dropped); the renderer thread sees EOF."""
        self._stopped = True
        process = self._process
        if process is not None:
            with contextlib.suppress(ValueError):  # already closed by the renderer thread
                process.terminate()

    def close(self) -> None:
        """After the renderer thread has ended: release the pipe and reap the worker."""
        self._stopped = True
        self._reap()


def quantize(audio: np.ndarray, pitch: int, sample_rate: int) -> Note:
    """float waveform → ``Note`` (int16, peak ↦ 32767). Raises ModelError on NaN/inf."""
    peak = max(float(audio.max()), -float(audio.min())) if len(audio) else 0.0
    if not math.isfinite(peak):
        raise ModelError(f"the model produced non-finite audio for pitch {pitch}")
    gain = peak / INT16_FULL_SCALE if peak > 0 else 1.0 / INT16_FULL_SCALE
    scaled = np.multiply(audio, np.float32(1.0 / gain), dtype=np.float32)
    pcm = np.rint(scaled, out=scaled).astype(np.int16)
    pcm.flags.writeable = False
    return Note(pcm=pcm, gain=gain, pitch=pitch, sample_rate=sample_rate)


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
    pcm = np.frombuffer(data, dtype="<i2", count=frames, offset=offset).astype(np.int16, copy=False)
    pcm.flags.writeable = False
    return Note(pcm=pcm, gain=gain, pitch=key.pitch, sample_rate=key.sample_rate)


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


class NoteCache:
    """Memory + disk note cache with a background renderer (threads: see the module docstring).

    ``cache_dir=None`` keeps notes in memory only. ``renderer``: where notes are rendered,
    ``"thread"`` or ``"process"`` (see the module docstring).
    """

    def __init__(
        self,
        model: NoteModel,
        sample_rate: int,
        cache_dir: Path | None = DEFAULT_CACHE_DIR,
        max_disk_bytes: int = DEFAULT_MAX_DISK_BYTES,
        batch_size: int = DEFAULT_BATCH_SIZE,
        near_semitones: int = NEAR_SEMITONES,
        renderer: str = "thread",
        max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
    ) -> None:
        if max_memory_bytes <= 0:
            raise CacheError(
                f"note cache memory cap (--max-memory-mb) must be above 0, got {max_memory_bytes} B"
            )
        if sample_rate <= 0:
            raise CacheError(f"output sample rate must be > 0 Hz, got {sample_rate}")
        if batch_size < 1:
            raise CacheError(f"batch size must be >= 1, got {batch_size}")
        if renderer not in RENDERERS:
            raise CacheError(f"unknown renderer '{renderer}' (choose from {', '.join(RENDERERS)})")
        self.sample_rate = int(sample_rate)
        self.batch_size = batch_size
        self.near_semitones = near_semitones
        self.max_memory_bytes = int(max_memory_bytes)
        self._model = model
        self.renderer = renderer
        self._renderer = (
            _ProcessRenderer(model) if renderer == "process" else _ThreadRenderer(model)
        )
        self._model_digest = model.digest
        self._model_pitches = frozenset(model.pitches)
        self._store = DiskStore(cache_dir, max_disk_bytes) if cache_dir is not None else None
        # Written by the renderer only; read lock-free (a dict get / a tuple swap is atomic).
        self._notes: dict[tuple[str, int], Note] = {}
        self._cached_pitches: dict[str, tuple[int, ...]] = {}
        # Last lookup/publish tick per cached note: written lock-free by lookups (an int store).
        self._last_used: dict[tuple[str, int], int] = {}
        self._ticks = itertools.count()
        # Everything below is guarded by _cond.
        self._memory_bytes = 0
        self._done: set[tuple[str, int]] = set()  # published at least once (maybe evicted since)
        self._cond = threading.Condition()
        self._latents: dict[str, np.ndarray] = {}
        self._requested: dict[str, set[int]] = {}
        self._pending: dict[tuple[str, int], Priority] = {}
        self._queue: list[tuple[int, int, str, int]] = []  # heap; stale entries skipped on pop
        self._order = itertools.count()
        self._in_flight: set[tuple[str, int]] = set()
        self._errors: dict[tuple[str, int], Exception] = {}
        self._recent: deque[tuple[str, int]] = deque(maxlen=RECENT_PLAYED)
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def disk_store(self) -> DiskStore | None:
        return self._store

    def start(self) -> None:
        """Start the renderer thread (a daemon: it never keeps the program alive)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="note-renderer", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the renderer (a thread after its batch, a process at once); pending requests are
        dropped, and a renderer process is ended and waited for."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._renderer.interrupt()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._renderer.close()

    def __enter__(self) -> NoteCache:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def memory_bytes(self) -> int:
        """Bytes of note samples held in memory now (at most ``max_memory_bytes``)."""
        return self._memory_bytes

    def lookup(self, timbre: str, pitch: int) -> Note | None:
        """The cached note, or None (not rendered yet, or evicted: request it again). Never
        blocks."""
        key = (timbre, pitch)
        note = self._notes.get(key)
        if note is not None:
            self._last_used[key] = next(self._ticks)
        return note

    def nearest(self, timbre: str, pitch: int) -> Note | None:
        """The cached note of this timbre closest in pitch (ties → lower), or None. Never blocks."""
        pitches = self._cached_pitches.get(timbre)
        if not pitches:
            return None
        i = bisect.bisect_left(pitches, pitch)
        below = pitches[i - 1] if i > 0 else None
        above = pitches[i] if i < len(pitches) else None
        if above is None or (below is not None and pitch - below <= above - pitch):
            best = below
        else:
            best = above
        return self.lookup(timbre, best)

    def request(
        self,
        latent: np.ndarray,
        pitches: Iterable[int],
        priority: Priority = Priority.BACKGROUND,
    ) -> str:
        """Queue the notes of this latent that are not cached yet; returns the timbre key.

        Never blocks on rendering. Re-requesting a pending note can only raise its priority. Raises
        ModelError for a latent of the wrong size or a pitch the model does not have.
        """
        z = np.asarray(latent, dtype=np.float32)
        if z.shape != (self._model.latent_size,):
            raise ModelError(
                f"latent has shape {z.shape}; this model takes ({self._model.latent_size},)"
            )
        wanted = [int(p) for p in pitches]
        unknown = sorted(set(wanted) - self._model_pitches)
        if unknown:
            raise ModelError(
                f"pitch {unknown[0]} is not one of the model's pitches "
                f"{', '.join(map(str, sorted(self._model_pitches)))}"
            )
        timbre = latent_digest(z)
        with self._cond:
            if timbre not in self._latents:
                self._latents[timbre] = z.copy()
            self._requested.setdefault(timbre, set()).update(wanted)
            for pitch in wanted:
                key = (timbre, pitch)
                self._errors.pop(key, None)  # asking again retries a failed render
                urgent = priority
                if urgent > Priority.NEAR and self._near_recent(timbre, pitch):
                    urgent = Priority.NEAR
                self._enqueue(key, urgent)
            self._cond.notify_all()
        return timbre

    def played(self, timbre: str, pitch: int) -> None:
        """Hint that ``pitch`` was played: pending pitches within ``near_semitones`` become NEAR."""
        with self._cond:
            self._recent.append((timbre, pitch))
            for distance in range(self.near_semitones + 1):  # nearest first: FIFO within a class
                for neighbour in (pitch - distance, pitch + distance):  # repeat at 0: no-op
                    key = (timbre, neighbour)
                    if key in self._pending:
                        self._enqueue(key, Priority.NEAR)
            self._cond.notify_all()

    def progress(self, timbre: str) -> tuple[int, int]:
        """(ready, requested) pitch counts of a timbre, for status views and progress bars; ready
        = rendered or read from disk this session (in memory, or evicted to disk since)."""
        with self._cond:
            requested = self._requested.get(timbre, set())
            ready = sum((timbre, p) in self._done for p in requested)
            return ready, len(requested)

    def wait(
        self,
        timbre: str,
        pitches: Iterable[int],
        timeout_s: float | None = None,
        *,
        in_memory: bool = True,
    ) -> bool:
        """Block until these notes are in memory (True) or the timeout passes (False).

        ``in_memory=False``: until each was rendered or read once (it may be evicted since), which
        is what filling the disk needs. For offline use and tests only, never the audio path.
        Raises CacheError if one of them failed to render.
        """
        keys = [(timbre, int(p)) for p in pitches]
        ready = self._notes if in_memory else self._done
        with self._cond:
            return self._cond.wait_for(lambda: self._all_ready(keys, ready), timeout_s)

    def _all_ready(self, keys: list[tuple[str, int]], ready: Container[tuple[str, int]]) -> bool:
        for key in keys:
            err = self._errors.get(key)
            if err is not None:
                raise CacheError(f"rendering pitch {key[1]} failed: {err}") from err
        return all(key in ready for key in keys)

    def _near_recent(self, timbre: str, pitch: int) -> bool:
        return any(t == timbre and abs(p - pitch) <= self.near_semitones for t, p in self._recent)

    def _enqueue(self, key: tuple[str, int], priority: Priority) -> None:
        """Add or raise a pending note (caller holds _cond); cached/rendering ones stay put."""
        if key in self._notes or key in self._in_flight:
            return
        current = self._pending.get(key)
        if current is not None and current <= priority:
            return
        self._pending[key] = priority
        heapq.heappush(self._queue, (int(priority), next(self._order), *key))

    def _take_batch(self) -> list[tuple[str, int]]:
        """Pop up to batch_size pending notes of the most urgent class (caller holds _cond)."""
        batch: list[tuple[str, int]] = []
        batch_priority = None
        while self._queue and len(batch) < self.batch_size:
            priority, _, timbre, pitch = self._queue[0]
            key = (timbre, pitch)
            if self._pending.get(key) != priority:  # stale: raised since, or already taken
                heapq.heappop(self._queue)
                continue
            if batch_priority is not None and priority != batch_priority:
                break
            heapq.heappop(self._queue)
            batch_priority = priority
            del self._pending[key]
            self._in_flight.add(key)
            batch.append(key)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or bool(self._pending))
                if self._closing:
                    return
                batch = self._take_batch()
            try:
                self._fill(batch)
            except Exception as err:
                if self._closing:  # a renderer process stopped by close(): nothing to report
                    return
                logger.exception("note cache: rendering %d note(s) failed", len(batch))
                with self._cond:
                    for key in batch:
                        if key in self._in_flight:
                            self._in_flight.discard(key)
                            self._errors[key] = err
                    self._cond.notify_all()

    def _fill(self, batch: list[tuple[str, int]]) -> None:
        """Serve a batch from disk where possible, render the rest in one generate call."""
        missing = []
        for timbre, pitch in batch:
            stored = self._store.load(self._key(timbre, pitch)) if self._store else None
            if stored is None:
                missing.append((timbre, pitch))
            else:
                self._publish((timbre, pitch), stored)
        if not missing:
            return
        z = np.stack([self._latents[timbre] for timbre, _ in missing])
        pitches = np.array([pitch for _, pitch in missing], dtype=np.int64)
        notes = self._renderer.render(z, pitches, self.sample_rate)
        for key, note in zip(missing, notes, strict=True):
            self._publish(key, note)  # playable before it reaches the disk
        if self._store is not None:
            for (timbre, pitch), note in zip(missing, notes, strict=True):
                self._store.save(self._key(timbre, pitch), note)

    def _key(self, timbre: str, pitch: int) -> NoteKey:
        return NoteKey(self._model_digest, timbre, pitch, self.sample_rate)

    def _publish(self, key: tuple[str, int], note: Note) -> None:
        with self._cond:
            old = self._notes.get(key)
            self._memory_bytes += note.pcm.nbytes - (0 if old is None else old.pcm.nbytes)
            self._last_used[key] = next(self._ticks)
            self._notes[key] = note
            timbre, pitch = key
            if pitch not in self._cached_pitches.get(timbre, ()):
                self._cached_pitches[timbre] = tuple(
                    sorted((*self._cached_pitches.get(timbre, ()), pitch))
                )
            self._in_flight.discard(key)
            self._done.add(key)
            self._evict_over_cap(keep=key)
            self._cond.notify_all()

    def _evict_over_cap(self, keep: tuple[str, int]) -> None:
        """Drop least recently used notes until within the cap (caller holds _cond): first those
        of timbres not played lately, then any but ``keep`` (the note just published)."""
        if self._memory_bytes <= self.max_memory_bytes:
            return
        playing = {timbre for timbre, _ in self._recent}
        order = sorted(
            (key for key in self._notes if key != keep),
            key=lambda k: (k[0] in playing, self._last_used.get(k, -1)),
        )
        for key in order:
            if self._memory_bytes <= self.max_memory_bytes:
                break
            timbre, pitch = key
            self._memory_bytes -= self._notes.pop(key).pcm.nbytes
            self._last_used.pop(key, None)
            left = tuple(p for p in self._cached_pitches[timbre] if p != pitch)
            if left:
                self._cached_pitches[timbre] = left
            else:
                del self._cached_pitches[timbre]


def mib_to_bytes(mib: float | None, default: int) -> int:
    """A ``--max-…-mb`` option in bytes; ``default`` when it was not given."""
    return default if mib is None else int(mib * MIB)


def warm(
    model: NoteModel,
    latents: dict[str, np.ndarray],
    sample_rate: int,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_disk_bytes: int = DEFAULT_MAX_DISK_BYTES,
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES,
) -> dict[str, str]:
    """Render every pitch of each named latent into the disk cache (ahead of a gig), with a bar.

    Notes already on disk are read back and checked instead of rendered. Returns name → timbre key.
    """
    check_writable_dir(Path(cache_dir), create=True)
    pitches = model.pitches
    with NoteCache(
        model, sample_rate, cache_dir, max_disk_bytes, batch_size, max_memory_bytes=max_memory_bytes
    ) as cache:
        timbres = {name: cache.request(z, pitches) for name, z in latents.items()}
        unique = list(dict.fromkeys(timbres.values()))  # two names for one latent: render once
        with tqdm(total=len(unique) * len(pitches), unit="note", desc="cache warm") as bar:
            for timbre in unique:
                while not cache.wait(timbre, pitches, timeout_s=0.25, in_memory=False):
                    bar.update(sum(cache.progress(t)[0] for t in unique) - bar.n)
            bar.update(bar.total - bar.n)
        store = cache.disk_store
        if store is not None and not store.writable:
            raise CacheError(f"{cache_dir}: could not write notes to the cache (see warning above)")
    return timbres


def run_warm(
    model_options: argparse.Namespace,
    presets: Sequence[str],
    banks: Sequence[str],
    seeds: Sequence[int],
    sample_rate: int,
    cache_dir: Path | None,
    *,
    batch_size: int | None = None,
    max_disk_mb: float | None = None,
    max_memory_mb: float | None = None,
) -> int:
    """``cache warm``: load the model, warm the cache for presets, banks (their programs and
    morph steps, as the engine will play them) and seeds; print what was done."""
    from gansynth_instrument.engine import Timbre, morph_steps
    from gansynth_instrument.presets import find_bank, find_preset

    found = [find_bank(name) for name in banks]  # bad names fail before the model loads
    names = list(presets) + [name for bank in found for name in bank.preset_names()]
    chosen = [find_preset(name) for name in dict.fromkeys(names)]
    if not chosen and not seeds:
        raise CacheError("nothing to warm: name presets, a --bank or a --seed")
    # onnxruntime: only once the names are good
    from gansynth_instrument.model import load_model_from_options

    model = load_model_from_options(model_options)
    size = model.latent_size
    latents = {f"preset {p.name}": p.latent_vector(size) for p in chosen}
    for bank in found:
        if len(bank.morph_path) >= 2:
            path = [Timbre.from_preset(find_preset(name), size) for name in bank.morph_path]
            steps = morph_steps(path, bank.morph_steps)
            latents |= {f"bank {bank.name} morph {t.name}": t.latent for t in steps}
    latents |= {f"seed {seed}": random_latent(seed, size) for seed in seeds}
    directory = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    timbres = warm(
        model,
        latents,
        sample_rate,
        directory,
        batch_size=batch_size or DEFAULT_BATCH_SIZE,
        max_disk_bytes=mib_to_bytes(max_disk_mb, DEFAULT_MAX_DISK_BYTES),
        max_memory_bytes=mib_to_bytes(max_memory_mb, DEFAULT_MAX_MEMORY_BYTES),
    )
    for name, timbre in timbres.items():
        print(f"{name}: timbre {timbre}, {len(model.pitches)} notes at {sample_rate} Hz")
    return run_info(directory)


def run_info(cache_dir: Path | None) -> int:
    """``cache info``: where the disk cache is, how many notes it holds, how big it is."""
    summary = DiskStore(_existing_dir(cache_dir)).summary()
    print(f"cache dir: {summary.path}")
    print(
        f"entries:   {summary.entries} notes "
        f"({summary.models} model(s), {summary.timbres} timbre(s))"
    )
    print(f"size:      {summary.total_bytes / 1e6:.1f} MB")
    return 0


def run_clear(cache_dir: Path | None) -> int:
    """``cache clear``: delete every cached note file (only those: nothing else in the dir)."""
    path = _existing_dir(cache_dir)
    removed, removed_bytes = DiskStore(path).clear()
    print(f"removed {removed} files ({removed_bytes / 1e6:.1f} MB) from {path}")
    return 0


def _existing_dir(cache_dir: Path | None) -> Path:
    path = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    if path.exists() and not path.is_dir():
        raise CacheError(f"{path}: cache dir is not a directory")
    return path
