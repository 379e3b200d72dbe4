"""Note workers: where the cache's notes are made, in its own thread or in a process of its own.

``ThreadWorker`` makes notes in the cache's worker thread, sharing this process's GIL with
everything else. ``ProcessWorker`` hands the latents to a spawned process that loads the model
again (same file, backend, threads, precision): that work then takes none of this process's GIL,
which the audio callback needs. Finished int16 notes come back in shared memory (a memfd passed
over the pipe, see ``_send_notes``). Both offer ``make``, ``interrupt`` and ``close``; the cache's
bookkeeping is the same for both. Users choose one with ``--renderer thread|process``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from typing import Protocol

import numpy as np

from gansynth_instrument.errors import CacheError
from gansynth_instrument.notes.make import NoteModel, make_notes
from gansynth_instrument.notes.note import Note
from gansynth_instrument.processes import (
    SPAWN,
    end_process,
    map_file,
    receive_mapping,
    shared_file,
    spawn,
)

WORKERS = ("thread", "process")
# The worker process yields the CPU to everything else: on 2 cores, a parent thread that holds
# the GIL must not wait behind the model, or the audio callback waits behind that thread.
WORKER_NICENESS = 19
# The first-note worker (see cache.py) is not niced: it makes one note at a time, rarely, while
# someone waits in silence; at niceness 19 any busy program on the machine would starve it.
FIRST_NOTE_NICENESS = 0
MAX_WORKER_DEATHS = 3  # a worker process that dies this often in a row is not restarted
WORKER_EXIT_WAIT_S = 5.0  # after SIGTERM; then SIGKILL


class NoteWorker(Protocol):
    """What the cache calls: make a batch, cut short at close, release what is held."""

    def make(self, z: np.ndarray, pitches: np.ndarray, sample_rate: int) -> list[Note]: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


def start_worker(kind: str, model: NoteModel) -> NoteWorker:
    """The worker named ``kind`` (one of ``WORKERS``)."""
    if kind not in WORKERS:
        raise CacheError(f"unknown renderer '{kind}' (choose from {', '.join(WORKERS)})")
    return ProcessWorker(model) if kind == "process" else ThreadWorker(model)


def start_first_note_worker(kind: str, model: NoteModel) -> ProcessWorker | None:
    """For ``kind`` "process", a second worker process, not niced, for new timbres' first
    notes (see cache.py); None for "thread", whose notes are made at this process's priority."""
    if kind != "process":
        return None
    return ProcessWorker(model, niceness=FIRST_NOTE_NICENESS, name="note-renderer-first")


class ThreadWorker:
    """Makes notes in the cache's worker thread, sharing this process's GIL with the audio."""

    def __init__(self, model: NoteModel) -> None:
        self._model = model

    def make(self, z: np.ndarray, pitches: np.ndarray, sample_rate: int) -> list[Note]:
        return make_notes(self._model, z, pitches, sample_rate)

    def interrupt(self) -> None:
        """Nothing to cut short: a thread finishes its batch."""

    def close(self) -> None:
        """Nothing held."""


def _worker_main(
    conn: Connection, options: tuple[str, str, int | None, str, str], niceness: int
) -> None:
    """The worker process: load the model, then answer (z, pitches, rate) until the parent's
    end of the pipe closes (close(), or the parent died: no orphan keeps running).

    Replies: ("ready", None) once loaded, then ("notes", ...) (see _send_notes) or ("error",
    message).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes us
    if hasattr(os, "nice") and niceness:
        os.nice(niceness)
    from gansynth_instrument.model.runtime import load_model

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
                notes = make_notes(model, *job)
            except Exception as err:
                conn.send(("error", str(err) or type(err).__name__))
            else:
                _send_notes(conn, notes)


def _send_notes(conn: Connection, notes: list[Note]) -> None:
    """Send a batch as ("notes", (shape, gains)) plus a memory file holding the int16 samples.

    Not pickled through the pipe: the parent's read of a few MB from a socket would be one system
    call that this kernel does not preempt, holding a CPU that JACK's real-time threads wait for
    (see ``processes.py``).
    """
    shape = (len(notes), len(notes[0].pcm))
    with shared_file(_batch_bytes(shape), "gansynth-notes") as fd:
        with map_file(fd, _batch_bytes(shape)) as buffer:
            shared = np.frombuffer(buffer, dtype=np.int16).reshape(shape)
            for i, note in enumerate(notes):
                shared[i] = note.pcm
            del shared  # no view may outlive the mapping
        conn.send(("notes", (shape, [note.gain for note in notes])))
        send_handle(conn, fd, os.getppid())


def _batch_bytes(shape: tuple[int, int]) -> int:
    return shape[0] * shape[1] * np.dtype(np.int16).itemsize


def _receive_notes(conn: Connection, shape: tuple[int, int]) -> list[np.ndarray]:
    """The samples _send_notes shared: one read-only int16 array per note, copied out."""
    with receive_mapping(conn, _batch_bytes(shape), readonly=True) as buffer:
        shared = np.frombuffer(buffer, dtype=np.int16).reshape(shape)
        rows = [row.copy() for row in shared]  # each its own array: the cache frees per note
        del shared
    for row in rows:
        row.flags.writeable = False
    return rows


class ProcessWorker:
    """Makes notes in a spawned worker process that loads the model from its file with the same
    backend, threads and precision. Only the small latents go there and finished int16 notes
    come back (through shared memory, see _send_notes): none of that work takes this
    process's GIL.

    A worker that dies fails its batch with a CacheError and is started again for the next one
    (not after MAX_WORKER_DEATHS deaths in a row, or when it could not load the model).
    """

    def __init__(
        self, model: NoteModel, *, niceness: int = WORKER_NICENESS, name: str = "note-renderer"
    ) -> None:
        self._niceness, self._name = niceness, name
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
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._deaths = 0
        self._load_error: str | None = None
        self._stopped = False

    def make(self, z: np.ndarray, pitches: np.ndarray, sample_rate: int) -> list[Note]:
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

    def start(self) -> None:
        """Start the worker process and wait for its model now, not at the first batch."""
        self._worker()

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
        ours, theirs = SPAWN.Pipe()
        process = spawn(_worker_main, (theirs, self._options, self._niceness), self._name)
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
        code = end_process(process, WORKER_EXIT_WAIT_S)
        process.close()
        return code

    def interrupt(self) -> None:
        """Stop the worker now (a batch in progress is dropped); the cache's thread sees EOF."""
        self._stopped = True
        process = self._process
        if process is not None:
            with contextlib.suppress(ValueError):  # already closed by the cache's worker thread
                process.terminate()

    def close(self) -> None:
        """After the cache's worker thread has ended: release the pipe and reap the worker."""
        self._stopped = True
        self._reap()
