"""MIDI files: every channel message of a type 0 or 1 file as raw bytes at its time in seconds.

Read with mido; the raw-byte events feed the engine render (``Engine.handle``) as live MIDI does,
and ``midi_notes`` pairs them into notes the way pretty_midi (and so Magenta) does. Files are
untrusted input: absurd timing is refused with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mido

from gansynth_instrument.errors import MidiFileError
from gansynth_instrument.midi_spec import CHANNEL_MASK, KIND_MASK, NOTE_OFF, NOTE_ON, is_note_on

# A song longer than this is a crafted tempo or delta time (a 28-bit delta at the slowest tempo
# spans 140 years), and would make renders allocate or loop without end; refusing it costs nothing.
MAX_MIDI_DURATION_S = 3600.0


@dataclass(frozen=True)
class MidiEvent:
    """A MIDI file's channel message at its time in seconds (raw bytes, for ``Engine.handle``)."""

    time_s: float
    data: tuple[int, ...]


@dataclass(frozen=True)
class MidiNote:
    pitch: int
    velocity: int
    start_s: float
    end_s: float


def read_midi(path: Path) -> list[MidiEvent]:
    """Every channel message of a MIDI file (type 0 or 1), merged and timed through its tempo map.

    Times come from absolute ticks, computed as pretty_midi (and so note_seq and Magenta) does:
    segment start + ticks · 60 / (bpm · ticks per beat), so note boundaries land on the same
    samples as in Magenta's render.
    Raises MidiFileError for a missing, malformed or type 2 file, one without notes, or one whose
    timing is absurd (tempo 0, SMPTE or zero ticks per beat, longer than ``MAX_MIDI_DURATION_S``).
    """
    path = Path(path)
    if not path.is_file():
        raise MidiFileError(f"{path}: no such file")
    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as err:
        reason = str(err) or type(err).__name__
        raise MidiFileError(f"{path}: not a readable MIDI file ({reason})") from None
    if midi.type == 2:
        raise MidiFileError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    if not 0 < midi.ticks_per_beat < 0x8000:  # bit 15 set: SMPTE frames, which pretty_midi lacks
        raise MidiFileError(
            f"{path}: unsupported time division {midi.ticks_per_beat} (need 1-32767 ticks/beat)"
        )
    tick_s = 60.0 / (120.0 * midi.ticks_per_beat)  # MIDI's default tempo, 120 bpm
    tick = segment_tick = 0
    segment_s = 0.0
    events: list[MidiEvent] = []
    for msg in mido.merge_tracks(midi.tracks):
        tick += msg.time
        now_s = segment_s + (tick - segment_tick) * tick_s
        if now_s > MAX_MIDI_DURATION_S:
            raise MidiFileError(
                f"{path}: an event at {now_s:.0f} s (tick {tick}); files longer than "
                f"{MAX_MIDI_DURATION_S:.0f} s are refused (absurd tempo or delta time?)"
            )
        if msg.type == "set_tempo":
            if msg.tempo <= 0:
                raise MidiFileError(f"{path}: tempo 0 µs/beat at tick {tick}")
            tick_s = 60.0 / (6e7 / msg.tempo * midi.ticks_per_beat)
            segment_tick, segment_s = tick, now_s
        elif not msg.is_meta and msg.type != "sysex":
            events.append(MidiEvent(now_s, tuple(msg.bytes())))
    if not any(is_note_on(e.data) for e in events):
        raise MidiFileError(f"{path}: holds no notes")
    return events


def midi_notes(events: Sequence[MidiEvent]) -> list[MidiNote]:
    """Notes in the order they end, as note_seq lists them (it reads through pretty_midi).

    Like pretty_midi, a note-off ends every sounding note of that channel and key, a zero-length
    note is dropped, and a note still sounding when the file ends is dropped.
    """
    sounding: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes: list[MidiNote] = []
    for event in events:
        channel, kind = event.data[0] & CHANNEL_MASK, event.data[0] & KIND_MASK
        if kind not in (NOTE_OFF, NOTE_ON):
            continue
        key, velocity = (channel, event.data[1]), event.data[2]
        if kind == NOTE_ON and velocity > 0:
            sounding.setdefault(key, []).append((event.time_s, velocity))
            continue
        for start_s, on_velocity in sounding.pop(key, []):
            if start_s < event.time_s:
                notes.append(MidiNote(key[1], on_velocity, start_s, event.time_s))
    return notes
