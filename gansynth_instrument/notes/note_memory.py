"""The notes a ``NoteCache`` holds in memory: read lock-free, capped, least recently used dropped.

``lookup`` and ``nearest`` are plain dict and tuple reads (the audio-facing side never waits);
``put`` runs on a cache worker thread under the cache's lock. Past ``max_bytes`` the least
recently used notes (by lookup or put) are dropped, those of recently played timbres last. A
dropped note is still on disk (``disk_store``), so asking for it again is a disk read, not a
model run; dropping only removes this reference, and a sounding voice keeps its own.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Container

from gansynth_instrument.notes.note import Note

NoteKey = tuple[str, int]  # timbre, MIDI pitch


class NoteMemory:
    """Notes by (timbre, pitch), within ``max_bytes`` of samples; see the module docstring."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0  # note samples held now (at most max_bytes after each put)
        # Written by put() only; read lock-free (a dict get / a tuple swap is atomic).
        self._notes: dict[NoteKey, Note] = {}
        self._pitches: dict[str, tuple[int, ...]] = {}
        # Last lookup/put tick per note: written lock-free by lookups (an int store).
        self._last_used: dict[NoteKey, int] = {}
        self._ticks = itertools.count()

    def __contains__(self, key: object) -> bool:
        return key in self._notes

    def lookup(self, timbre: str, pitch: int) -> Note | None:
        """The note, or None (not made yet, or dropped). Never blocks."""
        key = (timbre, pitch)
        note = self._notes.get(key)
        if note is not None:
            self._last_used[key] = next(self._ticks)
        return note

    def nearest(self, timbre: str, pitch: int) -> Note | None:
        """The note of this timbre closest in pitch (ties → lower), or None. Never blocks."""
        pitches = self._pitches.get(timbre)
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

    def put(self, key: NoteKey, note: Note, playing: Container[str]) -> None:
        """Hold ``note`` (replacing an older one of its key), then drop notes over the cap:
        first those of timbres not ``playing``, least recently used first, never ``key``."""
        old = self._notes.get(key)
        self.bytes += note.pcm.nbytes - (0 if old is None else old.pcm.nbytes)
        self._last_used[key] = next(self._ticks)
        self._notes[key] = note
        timbre, pitch = key
        if pitch not in self._pitches.get(timbre, ()):
            self._pitches[timbre] = tuple(sorted((*self._pitches.get(timbre, ()), pitch)))
        self._drop_over_cap(key, playing)

    def _drop_over_cap(self, keep: NoteKey, playing: Container[str]) -> None:
        if self.bytes <= self.max_bytes:
            return
        order = sorted(
            (key for key in self._notes if key != keep),
            key=lambda k: (k[0] in playing, self._last_used.get(k, -1)),
        )
        for key in order:
            if self.bytes <= self.max_bytes:
                break
            timbre, pitch = key
            self.bytes -= self._notes.pop(key).pcm.nbytes
            self._last_used.pop(key, None)
            left = tuple(p for p in self._pitches[timbre] if p != pitch)
            if left:
                self._pitches[timbre] = left
            else:
                del self._pitches[timbre]
