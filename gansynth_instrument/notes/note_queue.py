"""Which note a ``NoteCache`` makes next: pending notes by ``Priority``, taken in batches.

A new timbre's first note has no stand-in (no other pitch of it is made yet): its note-on waits
in silence. So a WAITING request for a timbre none of whose notes is ready yet jumps the queue
(``FIRST``), and the first batch of any timbre holds one note (with its reference note, for
levelling, when that is another pitch). With a first-note worker (``separate_first``), ``FIRST``
notes go to a queue of their own, one at a time: they never wait behind the niced worker's batch
in progress (a note in it is made again there). Played pitches pull their neighbours forward
(``NEAR``).

Every method runs under the cache's lock; nothing here waits, makes notes or does I/O.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections import deque
from collections.abc import Container

NoteKey = tuple[str, int]  # timbre, MIDI pitch
_Entry = tuple[int, int, str, int]  # a queue entry: priority, order, timbre, pitch

NEAR_SEMITONES = 2  # a played pitch pulls this many semitones either side forward (Priority.NEAR)
RECENT_PLAYED = 16  # how many played (timbre, pitch) pairs steer later requests


class Priority(enum.IntEnum):
    """How soon a note is needed; lower = sooner."""

    FIRST = -1  # WAITING, and no note of its timbre is ready (no stand-in): the cache raises it
    WAITING = 0  # someone pressed the key and hears nothing (or a stand-in) until it is ready
    NEAR = 1  # close to a recently played pitch: likely next
    BACKGROUND = 2  # the rest of a preset, filled while nothing else is pending


class NoteQueue:
    """Pending and in-flight notes; see the module docstring. ``made`` says which notes are
    held already (they are never queued); ``reference_pitch`` joins a timbre's first batch."""

    def __init__(
        self,
        made: Container[NoteKey],
        *,
        reference_pitch: int,
        separate_first: bool,
        near_semitones: int = NEAR_SEMITONES,
    ) -> None:
        self._made = made
        self._reference_pitch = reference_pitch
        self._separate_first = separate_first
        self.near_semitones = near_semitones
        self._pending: dict[NoteKey, Priority] = {}
        self._in_flight: set[NoteKey] = set()
        self._first_in_flight: set[NoteKey] = set()
        self._queue: list[_Entry] = []  # heap; stale entries skipped on pop
        self._first_queue: list[_Entry] = []  # FIRST notes, for the first worker
        self._order = itertools.count()
        self._begun: set[str] = set()  # timbres a batch was taken of
        self._ready: set[str] = set()  # timbres with a note made
        self.recent: deque[NoteKey] = deque(maxlen=RECENT_PLAYED)

    def has_work(self, *, first: bool = False) -> bool:
        """Whether the (first-note) queue holds an entry, maybe stale."""
        return bool(self._first_queue if first else self._queue)

    def playing(self) -> set[str]:
        """The timbres played lately (their notes are dropped from memory last)."""
        return {timbre for timbre, _ in self.recent}

    def add(self, key: NoteKey, priority: Priority) -> None:
        """Queue a note, or raise a pending one, at ``priority``, or sooner when it is near a
        recently played pitch."""
        timbre, pitch = key
        if priority > Priority.NEAR and any(
            t == timbre and abs(p - pitch) <= self.near_semitones for t, p in self.recent
        ):
            priority = Priority.NEAR
        self._enqueue(key, priority)

    def played(self, timbre: str, pitch: int) -> None:
        """``pitch`` was played: pending pitches within ``near_semitones`` become NEAR."""
        self.recent.append((timbre, pitch))
        for distance in range(self.near_semitones + 1):  # nearest first: FIFO within a class
            for neighbour in (pitch - distance, pitch + distance):  # repeat at 0: no-op
                key = (timbre, neighbour)
                if key in self._pending:
                    self._enqueue(key, Priority.NEAR)

    def _enqueue(self, key: NoteKey, priority: Priority) -> None:
        """Add or raise a pending note; made or in-progress ones stay put, except a FIRST note
        in the niced worker's batch: the first worker makes it too."""
        if key in self._made:
            return
        first = priority == Priority.WAITING and key[0] not in self._ready
        if first:
            priority = Priority.FIRST
        separate = first and self._separate_first
        if key in self._in_flight and not (separate and key not in self._first_in_flight):
            return
        current = self._pending.get(key)
        if current is not None and current <= priority:
            return
        self._pending[key] = priority
        queue = self._first_queue if separate else self._queue
        heapq.heappush(queue, (int(priority), next(self._order), *key))

    def take_batch(self, size: int, *, first: bool = False) -> list[NoteKey]:
        """Pop up to ``size`` pending notes of the most urgent class from the (first-note)
        queue, now in flight. A FIRST note goes alone, and so does a timbre's first batch, with
        its reference note when that is pending too (it is made with the first batch anyway)."""
        queue = self._first_queue if first else self._queue
        batch: list[NoteKey] = []
        batch_priority = None
        while queue and len(batch) < size:
            priority, _, timbre, pitch = queue[0]
            key = (timbre, pitch)
            if self._pending.get(key) != priority:  # stale: raised since, or already taken
                heapq.heappop(queue)
                continue
            if batch_priority is not None and priority != batch_priority:
                break
            heapq.heappop(queue)
            if priority == Priority.FIRST and timbre in self._ready:
                # A note of its timbre is ready now (a stand-in): it waits as others do.
                if key in self._in_flight:
                    del self._pending[key]  # the other worker is making it
                else:
                    self._pending[key] = Priority.WAITING
                    heapq.heappush(self._queue, (int(Priority.WAITING), next(self._order), *key))
                continue
            batch_priority = priority
            self._take(key, batch)
            if timbre not in self._begun:
                self._begun.add(timbre)
                reference = (timbre, self._reference_pitch)
                if reference in self._pending and reference not in self._in_flight:
                    self._take(reference, batch)
                break
            if priority == Priority.FIRST:
                break
        if first:
            self._first_in_flight.update(batch)
        return batch

    def _take(self, key: NoteKey, batch: list[NoteKey]) -> None:
        del self._pending[key]
        self._in_flight.add(key)
        batch.append(key)

    def done(self, key: NoteKey) -> None:
        """``key`` is made (by either worker): its timbre has a stand-in from now on."""
        self._in_flight.discard(key)
        self._first_in_flight.discard(key)
        self._pending.pop(key, None)  # made by the other worker meanwhile
        self._ready.add(key[0])

    def failed(self, key: NoteKey) -> bool:
        """``key`` could not be made; whether it was still in flight (else made meanwhile)."""
        self._first_in_flight.discard(key)
        if key not in self._in_flight:
            return False
        self._in_flight.discard(key)
        return True
