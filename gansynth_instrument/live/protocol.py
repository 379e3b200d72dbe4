"""The commands between the control side and the mixer as one binary layout, and the ring they
travel through.

``RECORD`` names every field a command can carry, once; the compiled core (``_mixcore.c``)
declares the same struct, and a test checks the two agree field by field. ``mixer.py``'s tuple
commands map onto it through ``FIELDS`` (which record field each tuple position fills), so the
``Mixer``'s protocol and this one cannot drift apart. ``OP_LOAD`` adds the one record the tuples
lack: a note entry's waveform is ready (in the audio process's arena, or attached in-process).

``Ring``: a single-producer, single-consumer ring of records over a buffer (the audio process's
shared file, or memory of its own in-process). A header holds the write count, the read count
and the count of records the reader dropped as malformed, each on a cache line of its own. The
writer fills a record, stamps it with its place in the stream (``sequence``, written last), then
publishes the write count; the reader consumes records up to the write count it saw, then
publishes the read count. A full ring refuses the record (``put`` returns False:
``voices.MixerLink``'s contract). The reader checks every record (``record_error``): one not
stamped with its place (truncated: published before it was whole, or left from an earlier lap),
naming a slot, entry or channel that does not exist, frames beyond its entry, or a number that is
not finite is dropped and counted, never applied. A write count behind the read count or more
than the ring's capacity ahead of it is read as no new records.

Pure NumPy: the audio process imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gansynth_instrument.live.mixer import (
    ALL_CHANNELS,
    CMD_BEND,
    CMD_FADE,
    CMD_GAIN,
    CMD_MORPH,
    CMD_NOTE_ON,
    CMD_RELEASE,
    CMD_SILENCE,
    IMMEDIATE,
    MIDI_CHANNELS,
)

OP_LOAD = 7  # a note entry's waveform is ready: its frames, gain as played, pitch, rate, loop
NO_NOTE = -1  # note_b of a command with one note

RECORD = np.dtype(
    [
        ("frame", np.int64),  # the frame it acts at; IMMEDIATE (-1): the next mixed block
        ("op", np.int32),
        ("slot", np.int32),
        ("serial", np.int64),
        ("note_a", np.int32),  # note entries (NO_NOTE: none)
        ("note_b", np.int32),
        ("channel", np.int32),  # MIDI channel 0-15 (ALL_CHANNELS for a silence)
        ("entry", np.int32),  # OP_LOAD's entry
        ("ratio_a", np.float64),
        ("ratio_b", np.float64),
        ("weight", np.float64),  # note_b's share
        ("amp", np.float64),
        ("attack", np.float64),  # frames
        ("release", np.float64),  # frames
        ("left", np.float64),  # CMD_GAIN's bus gains
        ("right", np.float64),
        ("bend", np.float64),  # CMD_BEND's ratio
        ("fade", np.float64),  # CMD_FADE's frames
        ("frames", np.int64),  # OP_LOAD: the waveform's length
        ("gain", np.float64),  # OP_LOAD: gain × level, as played
        ("pitch", np.int32),
        ("sample_rate", np.int32),
        ("loop_start", np.int64),  # OP_LOAD: loop frames; both 0: not looped
        ("loop_end", np.int64),
        ("sequence", np.int64),  # its place in the ring's stream + 1 (0: never written)
    ],
    align=True,
)

# Which record field each position of a tuple command fills (after the frame and opcode).
FIELDS: dict[int, tuple[str, ...]] = {
    CMD_NOTE_ON: (
        "slot",
        "serial",
        "note_a",
        "ratio_a",
        "note_b",
        "ratio_b",
        "weight",
        "amp",
        "attack",
        "release",
        "channel",
    ),
    CMD_RELEASE: ("slot", "serial"),
    CMD_MORPH: ("slot", "serial", "note_a", "ratio_a", "note_b", "ratio_b", "weight"),
    CMD_BEND: ("channel", "bend"),
    CMD_SILENCE: ("channel",),
    CMD_FADE: ("slot", "serial", "fade"),
    CMD_GAIN: ("channel", "left", "right"),
    OP_LOAD: ("entry", "frames", "gain", "pitch", "sample_rate", "loop_start", "loop_end"),
}
_POSITION = {name: i for i, name in enumerate(RECORD.names)}
_SEQUENCE = _POSITION["sequence"]
_BLANK = tuple(-1 if name.startswith("note_") else 0 for name in RECORD.names)
_INTEGERS = {name for name in RECORD.names if RECORD[name].kind == "i"}
_FLOATS = {name for name in RECORD.names if RECORD[name].kind == "f"}

# The ring's header: write, read and dropped counts (int64), each on a 64-byte line.
HEADER_SIZE = 192
WRITE, READ, DROPPED = 0, 8, 16  # their int64 indices

# The audio side's status row (float64): what the compiled core writes (its first four), then
# what the audio process adds. ENDED counts the serials written to the voice-end ring; LIMITED
# the frames the master limiter turned down (``levels.Limiter.limited_frames``).
(
    STATUS_ENDED,
    STATUS_VOICES,
    STATUS_PEAK,
    STATUS_LIMITED,
    STATUS_ACTIVE,
    STATUS_MIXER,
    STATUS_SIZE,
) = range(7)
ENDED_RING = 1024  # > the voices that can end between two reads (slots + 1, see Voices)


def to_record(cmd: Sequence) -> tuple:
    """A tuple command (``mixer.py``; notes already replaced by entry numbers or None) as the
    values of a record, in ``RECORD``'s field order."""
    values = list(_BLANK)
    values[_POSITION["frame"]] = cmd[0]
    values[_POSITION["op"]] = cmd[1]
    for name, value in zip(FIELDS[cmd[1]], cmd[2:], strict=True):
        values[_POSITION[name]] = NO_NOTE if value is None else value
    return tuple(values)


def from_record(values: Sequence) -> tuple:
    """A record's values (``RECORD`` order) as the tuple command it carries, notes as entry
    numbers (None for NO_NOTE)."""
    op = values[_POSITION["op"]]
    fields = [values[_POSITION[name]] for name in FIELDS[op]]
    fields = [
        None if n.startswith("note_") and v == NO_NOTE else v
        for n, v in zip(FIELDS[op], fields, strict=False)
    ]
    return (values[_POSITION["frame"]], op, *fields)


def record_error(
    values: Sequence, position: int, *, slots: int, entries: int, loaded, capacity
) -> str | None:
    """Why the record read at ``position`` (its place in the stream) must not be applied (None:
    it may). ``loaded(entry)``: the entry holds a waveform; ``capacity(entry)``: the frames it
    can hold. The compiled core checks the same."""
    if values[_SEQUENCE] != position + 1:
        return f"record {position} is stamped {values[_SEQUENCE] - 1} (truncated or stale)"
    op = values[_POSITION["op"]]
    if op not in FIELDS:
        return f"unknown op {op}"
    if values[_POSITION["frame"]] < IMMEDIATE:
        return "a frame stamp before IMMEDIATE"
    fields = dict(zip(FIELDS[op], (values[_POSITION[n]] for n in FIELDS[op]), strict=True))
    for name, value in fields.items():
        if name in _FLOATS and not math.isfinite(value):
            return f"{name} is not finite"
    if "slot" in fields and not 0 <= fields["slot"] < slots:
        return f"slot {fields['slot']} of {slots}"
    if "channel" in fields:
        lowest = ALL_CHANNELS if op == CMD_SILENCE else 0
        if not lowest <= fields["channel"] < MIDI_CHANNELS:
            return f"channel {fields['channel']}"
    for name in ("note_a", "note_b"):
        note = fields.get(name, NO_NOTE)
        named = (name == "note_a" and name in fields) or note != NO_NOTE
        if named and not (0 <= note < entries and loaded(note)):
            return f"{name} names entry {note}, which holds no note"
    if op == OP_LOAD:
        entry, frames = fields["entry"], fields["frames"]
        if not 0 <= entry < entries or not 0 <= frames <= capacity(entry):
            return f"load of {frames} frames into entry {entry}"
        if fields["sample_rate"] <= 0:
            return "a sample rate ≤ 0"
        start, end = fields["loop_start"], fields["loop_end"]
        if (start, end) != (0, 0) and not 0 <= start < end <= frames:
            return f"loop {start}..{end} of {frames} frames"
    return None


class Ring:
    """The SPSC record ring over ``buffer`` (``size(capacity)`` bytes; see the module
    docstring). Either side makes one over the same buffer; each uses only its own half."""

    def __init__(self, buffer, capacity: int) -> None:
        self.capacity = capacity
        self._counts = np.frombuffer(buffer, np.int64, HEADER_SIZE // 8, 0)
        self.records = np.frombuffer(buffer, RECORD, capacity, HEADER_SIZE)

    @staticmethod
    def size(capacity: int) -> int:
        return HEADER_SIZE + capacity * RECORD.itemsize

    @property
    def written(self) -> int:
        return int(self._counts[WRITE])

    @property
    def read(self) -> int:
        return int(self._counts[READ])

    @property
    def dropped(self) -> int:
        """Records the reader dropped as malformed."""
        return int(self._counts[DROPPED])

    def pending(self) -> int:
        return self.written - self.read

    def put(self, values: tuple) -> bool:
        """Write one record (``to_record``'s values; its ``sequence`` is stamped here, after
        the other fields) and publish it; False if the ring is full."""
        written = self.written
        if written - self.read >= self.capacity:
            return False
        self.records[written % self.capacity] = (*values[:_SEQUENCE], 0)
        self.records["sequence"][written % self.capacity] = written + 1
        self._counts[WRITE] = written + 1
        return True

    # -- the reader's half (the NumPy fallback; the compiled core reads the same memory) -------

    def readable(self, position: int) -> int:
        """The write count, or ``position`` where it is behind it or more than the ring's
        capacity ahead (a torn or corrupt count: nothing is read)."""
        end = self.written
        return end if position <= end <= position + self.capacity else position

    def peek(self, position: int, end: int) -> list[tuple]:
        """The values of the records from ``position`` up to ``end`` (``readable``'s count)."""
        index = np.arange(position, end) % self.capacity
        return self.records[index].tolist()

    def publish_read(self, count: int) -> None:
        self._counts[READ] = count

    def count_dropped(self) -> None:
        self._counts[DROPPED] += 1


__all__ = [
    "ENDED_RING",
    "FIELDS",
    "HEADER_SIZE",
    "NO_NOTE",
    "OP_LOAD",
    "RECORD",
    "STATUS_ACTIVE",
    "STATUS_ENDED",
    "STATUS_LIMITED",
    "STATUS_MIXER",
    "STATUS_PEAK",
    "STATUS_SIZE",
    "STATUS_VOICES",
    "Ring",
    "from_record",
    "record_error",
    "to_record",
]
