"""The control side of the command ring (``protocol.py``): what ``Voices`` calls (``send``,
``pending``, ``take_finished``) for a mixer that reads records, in the audio process or in this
one (``compiled_mixer.CompiledMixer``).

Notes cross once: a command names waveforms by note-table entry. A waveform without an entry is
stored into a free one (``store``: copied into the audio process's arena, or attached to the
in-process core) and announced by an ``OP_LOAD`` record before the command that names it. The
sender knows which entries a voice may still read: the notes its mixer layers hold (those of its
note-on, then the ``MORPH_LAYERS`` most recently named by its morphs: ``mixer.layers_after``),
until the mixer reports the voice ended or its slot is reused. It rewrites an entry only when no
voice holds it and the mixer has applied every record written while one did.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from gansynth_instrument.live.mixer import CMD_MORPH, CMD_NOTE_ON, NOTE_FIELDS, layers_after
from gansynth_instrument.live.protocol import (
    ENDED_RING,
    OP_LOAD,
    STATUS_ENDED,
    STATUS_PEAK,
    STATUS_VOICES,
    Ring,
    to_record,
)
from gansynth_instrument.notes.note import LoopedNote

logger = logging.getLogger(__name__)
_IN_FLIGHT = 1 << 62  # an entry being placed: not free until its command's count is known


class CommandSender:
    """Tuple commands → ring records, notes → table entries (see the module docstring).

    ``status`` and ``ended``: the mixer's status row and voice-end ring (``protocol.py``).
    ``store(entry, note)`` puts ``note``'s waveform where the mixer reads ``entry``.
    """

    def __init__(
        self,
        ring: Ring,
        status: np.ndarray,
        ended: np.ndarray,
        entries: int,
        store: Callable[[int, Any], None],
    ) -> None:
        self._ring = ring
        self._status = status
        self._ended = ended
        self._store = store
        self._ended_read = 0
        self._dropped_seen = 0
        # id(pcm) → the entry holding it. Weak references tell a live waveform from a new one
        # at a freed one's address.
        self._entry_of: dict[int, int] = {}
        self._pcm: list[weakref.ref[np.ndarray] | None] = [None] * entries
        self._pcm_id: list[int | None] = [None] * entries
        self._users = [0] * entries
        self._free_after = [0] * entries  # rewritable once this many records are applied
        self._lru: OrderedDict[int, None] = OrderedDict.fromkeys(range(entries))
        self._voice: dict[int, tuple[int, tuple[int, ...]]] = {}  # slot → serial, entries held
        self._slot_of: dict[int, int] = {}  # serial → slot

    def send(self, cmd: tuple) -> bool:
        """Write a command, its notes stored and loaded first; False if the ring is full or no
        entry is free (every one held by a voice or by records not applied yet)."""
        op = cmd[1]
        placed: list[int] = []
        held: tuple[int, ...] = ()
        sent = False
        try:
            if op in (CMD_NOTE_ON, CMD_MORPH):
                fields = list(cmd)
                for i in NOTE_FIELDS:
                    if fields[i] is not None:
                        entry = self._place(fields[i], placed)
                        if entry is None:
                            return False
                        fields[i] = entry
                        held += (entry,)
                cmd = tuple(fields)
            sent = self._ring.put(to_record(cmd))
        finally:
            for entry in placed:  # free again once every record written so far is applied
                self._free_after[entry] = self._ring.written
        if not sent:
            return False
        if op == CMD_NOTE_ON:
            self._hold(cmd[2], cmd[3], held)
        elif op == CMD_MORPH:
            # A morph of a voice that already ended is ignored by the mixer: nothing more held.
            previous = self._voice.get(cmd[2])
            if previous is not None and previous[0] == cmd[3]:
                self._hold(cmd[2], cmd[3], layers_after(previous[1], held))
        return True

    def pending(self) -> int:
        """Records written that the mixer has not applied yet."""
        self._warn_dropped()
        return self._ring.pending()

    def take_finished(self) -> list[int]:
        """Serial numbers of the voices the mixer ended since the last call."""
        end = int(self._status[STATUS_ENDED])
        serials = [int(self._ended[i % ENDED_RING]) for i in range(self._ended_read, end)]
        self._ended_read = end
        for serial in serials:
            slot = self._slot_of.get(serial)
            if slot is not None:
                self._hold(slot, None, ())
        return serials

    def held(self, slot: int) -> tuple[int, ...]:
        """The entries the voice in ``slot`` may read, least recently named first (the notes
        ``mixer.layers_after`` gives its commands); () once it ended."""
        voice = self._voice.get(slot)
        return voice[1] if voice is not None else ()

    def _warn_dropped(self) -> None:
        dropped = self._ring.dropped
        if dropped > self._dropped_seen:
            self._dropped_seen = dropped
            logger.warning("the mixer dropped %d malformed command record(s) so far", dropped)

    def _place(self, note: Any, placed: list[int]) -> int | None:
        """The entry holding ``note``'s waveform, stored and loaded now if none does."""
        pcm: np.ndarray = note.pcm
        entry = self._entry_of.get(id(pcm))
        held = self._pcm[entry] if entry is not None else None
        if held is None or held() is not pcm:
            entry = self._free_entry()
            if entry is None:
                return None
            old_id = self._pcm_id[entry]
            if old_id is not None and self._entry_of.get(old_id) == entry:
                del self._entry_of[old_id]
            self._pcm[entry] = self._pcm_id[entry] = None
            self._store(entry, note)
            loop = (note.loop_start, note.loop_end) if isinstance(note, LoopedNote) else (0, 0)
            load = (-1, OP_LOAD, entry, len(pcm), note.gain * note.level, note.pitch)
            if not self._ring.put(to_record((*load, note.sample_rate, *loop))):
                return None
            self._pcm[entry] = weakref.ref(pcm)
            self._pcm_id[entry] = id(pcm)
            self._entry_of[id(pcm)] = entry
        self._lru.move_to_end(entry)
        self._free_after[entry] = _IN_FLIGHT
        placed.append(entry)
        return entry

    def _free_entry(self) -> int | None:
        """The least recently used entry no voice holds and no unapplied record names."""
        applied = self._ring.read
        for entry in self._lru:
            if self._users[entry] == 0 and self._free_after[entry] <= applied:
                return entry
        return None

    def _hold(self, slot: int, serial: int | None, entries: tuple[int, ...]) -> None:
        """The voice in ``slot`` now reads ``entries`` (``serial`` None: it ended)."""
        old = self._voice.pop(slot, None)
        if old is not None:
            self._slot_of.pop(old[0], None)
            for entry in old[1]:
                self._users[entry] -= 1
                self._free_after[entry] = max(self._free_after[entry], self._ring.written)
        if serial is not None:
            self._voice[slot] = (serial, entries)
            self._slot_of[serial] = slot
            for entry in entries:
                self._users[entry] += 1


class SenderLink:
    """What ``Voices`` calls on a mixer fed through a ``CommandSender`` (the compiled mixer here,
    the audio process's child there), and the mixer's status row read back."""

    _sender: CommandSender
    _status: np.ndarray

    def send(self, cmd: tuple) -> bool:
        """Write a command, its notes stored first; False if the ring is full or no note entry
        is free (see ``CommandSender.send``)."""
        return self._sender.send(cmd)

    def pending(self) -> int:
        """Records written that the mixer has not applied yet."""
        return self._sender.pending()

    def take_finished(self) -> list[int]:
        """Serial numbers of the voices the mixer ended since the last call."""
        return self._sender.take_finished()

    @property
    def voices_active(self) -> int:
        """Voices mixed in the mixer's last block."""
        return int(self._status[STATUS_VOICES])

    @property
    def voices_peak(self) -> int:
        """The most voices mixed in one block since it was last set to 0."""
        return int(self._status[STATUS_PEAK])

    @voices_peak.setter
    def voices_peak(self, value: int) -> None:
        self._status[STATUS_PEAK] = value


__all__ = ["CommandSender", "SenderLink"]
