"""Real MIDI files for the render tests: timed messages written as a type-0 file."""

from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_SECOND = 960  # 480 ticks per beat at the default 120 bpm


def write_midi(path: Path, messages: list[tuple[float, mido.Message]]) -> Path:
    """A type-0 file at 120 bpm, 480 ticks per beat: each (time in seconds, message), in time
    order (a stable sort keeps the given order of messages at the same time)."""
    track = mido.MidiTrack()
    last = 0
    for time_s, msg in sorted(messages, key=lambda m: m[0]):
        tick = round(time_s * TICKS_PER_SECOND)
        track.append(msg.copy(time=tick - last))
        last = tick
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(path)
    return path
