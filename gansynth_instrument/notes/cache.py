"""Note cache: every sound the instrument plays is a finished note from here.

A note is keyed by (model digest, timbre = latent digest, MIDI pitch, output sample rate). A
background thread fills the cache: it takes the most urgent pending notes (``Priority``), batches
up to ``batch_size`` of one priority class into one call of its note worker (``note_workers.py``:
make the notes in that thread, or in a process of its own), and keeps each note in memory.

Which note is made next is ``note_queue``'s: a new timbre's first note jumps the queue
(``Priority.FIRST``: it has no stand-in, so its note-on waits in silence). With a worker
process, a second thread and a second process, not niced
(``note_workers.start_first_note_worker``), make ``FIRST`` notes one at a time: they never wait
behind the niced worker's batch in progress, nor for the CPU that a niced process gets on a busy
machine. That process starts with the first note the cache has to make.
Finished notes also go to the disk store (``disk_store.py``), so a restart or a preset switch does
not make them again.

Levels: a timbre's notes are levelled by its loudness reference (``levels.py``), the peak of its
note at ``levels.reference_pitch``: made with the timbre's first batch when no note carries it
yet, then written into every note's header on disk, so it is measured once per timbre.

Threads: ``lookup``/``nearest`` are plain dict reads and never wait; ``request``/``played``/
``progress`` take a lock the worker threads only hold for bookkeeping (never while making notes or
doing I/O). Within a NoteCache only the worker threads touch the disk store (one at a time) or log.

Memory: a fully cached preset is pitches x note length x output rate x 2 bytes. The in-memory
notes are capped (``max_memory_bytes``; ``note_memory``): past the cap the least recently used
notes are dropped, those of recently played timbres last; a dropped note is still on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Container, Iterable
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm import tqdm

from gansynth_instrument.errors import CacheError, ModelError
from gansynth_instrument.fileio import check_writable_dir
from gansynth_instrument.model.latent import latent_digest
from gansynth_instrument.model.metadata import check_pitches
from gansynth_instrument.notes.disk_store import (
    DEFAULT_CACHE_DIR,
    DEFAULT_MAX_DISK_BYTES,
    DiskStore,
    NoteKey,
)
from gansynth_instrument.notes.levels import reference_pitch
from gansynth_instrument.notes.make import INT16_FULL_SCALE, NoteModel
from gansynth_instrument.notes.note import Note
from gansynth_instrument.notes.note_memory import NoteMemory
from gansynth_instrument.notes.note_queue import NEAR_SEMITONES, NoteQueue, Priority
from gansynth_instrument.notes.note_workers import NoteWorker, start_first_note_worker, start_worker

logger = logging.getLogger(__name__)

DEFAULT_MAX_MEMORY_BYTES = 512 * 1024**2  # ≈ 22 fully cached presets at 48 kHz
MIB = 1024**2
DEFAULT_BATCH_SIZE = 4  # bounds how long a WAITING note can queue behind a batch already made


class NoteCache:
    """Memory + disk note cache, filled by a background thread (see the module docstring).

    ``cache_dir=None`` keeps notes in memory only. ``renderer``: where notes are made,
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
        self.sample_rate = int(sample_rate)
        self.batch_size = batch_size
        self._model = model
        self.renderer = renderer
        self._worker = start_worker(renderer, model)
        self._first_worker = start_first_note_worker(renderer, model)
        self._model_digest = model.digest
        self._model_pitches = frozenset(model.pitches)
        self._reference_pitch = reference_pitch(model.pitches)
        # timbre → its reference note's peak (levels.py); written by the renderer threads only.
        self._references: dict[str, float] = {}
        self._store = DiskStore(cache_dir, max_disk_bytes) if cache_dir is not None else None
        self._store_lock = threading.Lock()  # between the two renderer threads only
        # Written by the worker threads only, under _cond; read lock-free.
        self._memory = NoteMemory(max_memory_bytes)
        # Everything below is guarded by _cond.
        self._queue = NoteQueue(
            self._memory,
            reference_pitch=self._reference_pitch,
            separate_first=self._first_worker is not None,
            near_semitones=near_semitones,
        )
        self._done: set[tuple[str, int]] = set()  # published at least once (maybe evicted since)
        self._cond = threading.Condition()
        self._latents: dict[str, np.ndarray] = {}
        self._requested: dict[str, set[int]] = {}
        self._first_wanted = False  # the first worker starts with the first note to make
        self._first_asked = False
        self._errors: dict[tuple[str, int], Exception] = {}
        self._closing = False
        self._threads: list[threading.Thread] = []

    @property
    def disk_store(self) -> DiskStore | None:
        return self._store

    def start(self) -> None:
        """Start the worker threads (daemons: they never keep the program alive)."""
        if self._threads:
            return
        runs = [(self._run, "note-renderer")]
        if self._first_worker is not None:
            runs.append((self._run_first, "note-renderer-first"))
        for target, name in runs:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Stop making notes (a thread after its batch, a process at once); pending requests are
        dropped, and a worker process is ended and waited for."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        workers = [w for w in (self._worker, self._first_worker) if w is not None]
        for worker in workers:
            worker.interrupt()
        for thread in self._threads:
            thread.join()
        self._threads = []
        for worker in workers:
            worker.close()

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
    def max_memory_bytes(self) -> int:
        """The cap on note samples held in memory."""
        return self._memory.max_bytes

    @property
    def near_semitones(self) -> int:
        """How far either side of a played pitch pending notes move up to ``Priority.NEAR``."""
        return self._queue.near_semitones

    @property
    def memory_bytes(self) -> int:
        """Bytes of note samples held in memory now (at most ``max_memory_bytes``)."""
        return self._memory.bytes

    def lookup(self, timbre: str, pitch: int) -> Note | None:
        """The cached note, or None (not made yet, or evicted: request it again). Never
        blocks."""
        return self._memory.lookup(timbre, pitch)

    def nearest(self, timbre: str, pitch: int) -> Note | None:
        """The cached note of this timbre closest in pitch (ties → lower), or None. Never blocks."""
        return self._memory.nearest(timbre, pitch)

    def request(
        self,
        latent: np.ndarray,
        pitches: Iterable[int],
        priority: Priority = Priority.BACKGROUND,
    ) -> str:
        """Queue the notes of this latent that are not cached yet; returns the timbre key.

        Never waits for notes to be made. Re-requesting a pending note can only raise its priority.
        Raises ModelError for a latent of the wrong size or a pitch the model does not have.
        """
        z = np.asarray(latent, dtype=np.float32)
        if z.shape != (self._model.latent_size,):
            raise ModelError(
                f"latent has shape {z.shape}; this model takes ({self._model.latent_size},)"
            )
        wanted = [int(p) for p in pitches]
        check_pitches(self._model_pitches, wanted)
        timbre = latent_digest(z)
        with self._cond:
            if timbre not in self._latents:
                self._latents[timbre] = z.copy()
            self._requested.setdefault(timbre, set()).update(wanted)
            for pitch in wanted:
                key = (timbre, pitch)
                self._errors.pop(key, None)  # asking again retries a failed note
                self._queue.add(key, priority)
            self._cond.notify_all()
        return timbre

    def played(self, timbre: str, pitch: int) -> None:
        """Hint that ``pitch`` was played: pending pitches within ``near_semitones`` become NEAR."""
        with self._cond:
            self._queue.played(timbre, pitch)
            self._cond.notify_all()

    def progress(self, timbre: str) -> tuple[int, int]:
        """(ready, requested) pitch counts of a timbre, for status views and progress bars; ready
        = made or read from disk this session (in memory, or evicted to disk since)."""
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

        ``in_memory=False``: until each was made or read once (it may be evicted since), which
        is what filling the disk needs. For offline use and tests only, never the audio path.
        Raises CacheError if one of them failed.
        """
        keys = [(timbre, int(p)) for p in pitches]
        ready = self._memory if in_memory else self._done
        with self._cond:
            return self._cond.wait_for(lambda: self._all_ready(keys, ready), timeout_s)

    def _all_ready(self, keys: list[tuple[str, int]], ready: Container[tuple[str, int]]) -> bool:
        for key in keys:
            err = self._errors.get(key)
            if err is not None:
                raise CacheError(f"rendering pitch {key[1]} failed: {err}") from err
        return all(key in ready for key in keys)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or self._queue.has_work())
                if self._closing:
                    return
                batch = self._queue.take_batch(self.batch_size)
            self._make(batch, self._worker)

    def _run_first(self) -> None:
        """The first worker's thread: FIRST notes one at a time (see the module docstring)."""
        worker = self._first_worker
        assert worker is not None
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or self._queue.has_work(first=True) or self._first_wanted
                )
                if self._closing:
                    return
                start, self._first_wanted = self._first_wanted, False
                batch = self._queue.take_batch(1, first=True)
                self._cond.notify_all()  # notes it passed on to the other queue
            if start:
                with contextlib.suppress(CacheError):  # said by the first batch that needs it
                    worker.start()
            self._make(batch, worker)

    def _make(self, batch: list[tuple[str, int]], worker: NoteWorker) -> None:
        """Fill ``batch`` with ``worker``; a failure is kept for each note's waiters."""
        if not batch:
            return
        try:
            self._fill(batch, worker)
        except Exception as err:
            if self._closing:  # a worker process stopped by close(): nothing to report
                return
            logger.exception("note cache: rendering %d note(s) failed", len(batch))
            with self._cond:
                for key in batch:
                    if self._queue.failed(key):
                        self._errors[key] = err
                self._cond.notify_all()

    def _fill(self, batch: list[tuple[str, int]], worker: NoteWorker) -> None:
        """Serve a batch from disk where possible, render the rest in one generate call. Every
        note goes out with its timbre's loudness reference: a timbre seen for the first time is
        measured on its reference note, read from disk or made with this batch (and stored; it
        joins the memory only when requested, so it never pushes a requested note out)."""
        found: dict[tuple[str, int], Note] = {}
        missing = []
        for timbre, pitch in batch:
            stored = self._load((timbre, pitch))
            if stored is None:
                missing.append((timbre, pitch))
            else:
                found[(timbre, pitch)] = stored
        self._learn_references(found)
        for key in dict.fromkeys((timbre, self._reference_pitch) for timbre, _ in batch):
            if key in found or key in missing or key[0] in self._references:
                continue
            stored = self._load(key)
            if stored is None:
                missing.append(key)
            else:
                found[key] = stored
        self._learn_references(found)
        later = {}
        for key, note in found.items():  # playable now, before any rendering
            if key[0] in self._references:
                self._finish(key, note, key in batch, made=False)
            else:
                later[key] = note
        if not missing:
            return
        if self._first_worker is not None and not self._first_asked:
            self._first_asked = True
            with self._cond:  # notes are made here: the first worker gets ready too
                self._first_wanted = True
                self._cond.notify_all()
        z = np.stack([self._latents[timbre] for timbre, _ in missing])
        pitches = np.array([pitch for _, pitch in missing], dtype=np.int64)
        made = dict(zip(missing, worker.make(z, pitches, self.sample_rate), strict=True))
        self._learn_references(made)
        for key, note in later.items():
            self._finish(key, note, key in batch, made=False)
        for key, note in made.items():
            self._finish(key, note, key in batch, made=True)

    def _learn_references(self, notes: dict[tuple[str, int], Note]) -> None:
        """Take each timbre's reference from its reference note, or from a note that carries it
        (notes stored before levelling carry none)."""
        for (timbre, pitch), note in notes.items():
            if timbre in self._references:
                continue
            if note.reference > 0.0:
                self._references[timbre] = note.reference
            elif pitch == self._reference_pitch:
                self._references[timbre] = note.gain * INT16_FULL_SCALE  # its own peak

    def _finish(self, key: tuple[str, int], note: Note, requested: bool, *, made: bool) -> None:
        """Publish a requested note with its timbre's reference; store it if it was made now,
        or stored before levelling (then rewritten with the reference)."""
        reference = self._references[key[0]]
        save = made or note.reference != reference
        if note.reference != reference:
            note = dataclasses.replace(note, reference=reference)
        if requested:
            self._publish(key, note)  # playable before it reaches the disk
        if save and self._store is not None:
            with self._store_lock:
                self._store.save(self._key(*key), note)

    def _load(self, key: tuple[str, int]) -> Note | None:
        if self._store is None:
            return None
        with self._store_lock:
            return self._store.load(self._key(*key))

    def _key(self, timbre: str, pitch: int) -> NoteKey:
        return NoteKey(self._model_digest, timbre, pitch, self.sample_rate)

    def _publish(self, key: tuple[str, int], note: Note) -> None:
        with self._cond:
            self._memory.put(key, note, self._queue.playing())
            self._queue.done(key)
            self._done.add(key)
            self._cond.notify_all()


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
    """Make every pitch of each named latent into the disk cache (ahead of a gig), with a bar.

    Notes already on disk are read back and checked, not made again. Returns name → timbre key.
    """
    check_writable_dir(Path(cache_dir), create=True)
    pitches = model.pitches
    with NoteCache(
        model, sample_rate, cache_dir, max_disk_bytes, batch_size, max_memory_bytes=max_memory_bytes
    ) as cache:
        timbres = {name: cache.request(z, pitches) for name, z in latents.items()}
        unique = list(dict.fromkeys(timbres.values()))  # two names for one latent: made once
        with tqdm(total=len(unique) * len(pitches), unit="note", desc="cache warm") as bar:
            for timbre in unique:
                while not cache.wait(timbre, pitches, timeout_s=0.25, in_memory=False):
                    bar.update(sum(cache.progress(t)[0] for t in unique) - bar.n)
            bar.update(bar.total - bar.n)
        store = cache.disk_store
        if store is not None and not store.writable:
            raise CacheError(f"{cache_dir}: could not write notes to the cache (see warning above)")
    return timbres
