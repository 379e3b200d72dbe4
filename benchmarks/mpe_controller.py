"""A synthetic MPE controller: plays a short MPE phrase into the instrument's MIDI input.

For people without an MPE controller, and for the tests and ``bench_mpe.py``. It opens a MIDI
output through rtmidi (on JACK when a JACK server runs, else ALSA), connects it to the
instrument's input port, sends the MPE Configuration Message (a lower zone), then a three-note
chord, each note on a member channel of its own, with its own slide (CC74), pressure and bend:

    gansynth-instrument play &                 # its MIDI input: gansynth-instrument:midi_in
    python benchmarks/mpe_controller.py        # or --port NAME, --list, --file OUT.mid

``--file OUT.mid`` writes the same phrase as a MIDI file instead (``gansynth-instrument render
OUT.mid -o out.wav`` plays it the same way).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import mido
import rtmidi

RPN_MSB, RPN_LSB, DATA_MSB = 101, 100, 6
SLIDE = 74
MANAGER = 0  # channel 1: the lower zone's manager
Phrase = list[tuple[float, list[int]]]  # (seconds from the start, raw MIDI bytes)


def configuration(members: int = 15, manager: int = MANAGER) -> list[list[int]]:
    """The MPE Configuration Message: RPN 6 = ``members`` on the manager channel."""
    cc = 0xB0 | manager
    return [[cc, RPN_MSB, 0], [cc, RPN_LSB, 6], [cc, DATA_MSB, members]]


def bend(channel: int, semitones: float, bend_range: float = 48.0) -> list[int]:
    """A pitch bend of ``semitones`` at the member's range (14-bit, centre 8192)."""
    value = max(0, min(16383, 8192 + round(semitones / bend_range * 8192)))
    return [0xE0 | channel, value & 0x7F, value >> 7]


def phrase(seconds: float = 3.0, steps: int = 60) -> Phrase:
    """The configuration, then a C major chord on member channels 2, 3 and 4: each note's
    slide and pressure are set before its note-on (as MPE asks), then the root slides up, the
    third slides down and presses, the fifth bends up a whole tone and back; all end together."""
    events: Phrase = [(0.0, msg) for msg in configuration()]
    chord = ((1, 60, 0, 120), (2, 64, 127, 90), (3, 67, 64, 100))  # channel, pitch, slide, vel
    for channel, pitch, slide, velocity in chord:
        events += [(0.05, [0xB0 | channel, SLIDE, slide]), (0.05, [0xD0 | channel, 0])]
        events += [(0.05, bend(channel, 0.0)), (0.06, [0x90 | channel, pitch, velocity])]
    sweep = seconds * 0.7
    for i in range(1, steps + 1):
        t, x = 0.1 + sweep * i / steps, i / steps
        events.append((t, [0xB1, SLIDE, round(127 * x)]))  # the root brightens
        events.append((t, [0xB2, SLIDE, round(127 * (1 - x))]))  # the third darkens
        events.append((t, [0xD2, round(127 * x)]))  # and presses harder
        events.append((t, bend(3, 2.0 * (1 - abs(2 * x - 1)))))  # the fifth: up and back
    end = 0.1 + seconds
    events += [(end, [0x80 | c, p, 0]) for c, p, _, _ in chord]
    return sorted(events, key=lambda e: e[0])


def write_phrase(path: Path, events: Phrase) -> Path:
    """The phrase as a type-0 MIDI file (120 bpm, 480 ticks per beat)."""
    track = mido.MidiTrack()
    last = 0
    for t, data in events:
        tick = round(t * 960)
        track.append(mido.Message.from_bytes(data).copy(time=tick - last))
        last = tick
    song = mido.MidiFile(type=0, ticks_per_beat=480)
    song.tracks.append(track)
    song.save(path)
    return path


def open_output(port: str) -> rtmidi.MidiOut:
    """An rtmidi output connected to the first port whose name contains ``port``."""
    api = rtmidi.API_UNIX_JACK if rtmidi.API_UNIX_JACK in rtmidi.get_compiled_api() else None
    out = rtmidi.MidiOut(api) if api is not None else rtmidi.MidiOut()
    names = out.get_ports()
    found = [i for i, name in enumerate(names) if port in name]
    if not found:
        raise SystemExit(f"no MIDI input named like {port!r}; there are: {names}")
    out.open_port(found[0], "mpe-controller")
    return out


def play(out: rtmidi.MidiOut, events: Phrase) -> None:
    """Send each message at its time."""
    start = time.perf_counter()
    for t, data in events:
        delay = start + t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        out.send_message(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", default="gansynth-instrument", help="input port to play into")
    parser.add_argument("--seconds", type=float, default=3.0, help="the phrase's length (3)")
    parser.add_argument("--list", action="store_true", help="list MIDI inputs and exit")
    parser.add_argument("--file", type=Path, help="write the phrase as a MIDI file instead")
    args = parser.parse_args()
    if args.file is not None:
        print(f"wrote {write_phrase(args.file, phrase(args.seconds))}")
        return 0
    if args.list:
        print("\n".join(rtmidi.MidiOut().get_ports()))
        return 0
    out = open_output(args.port)
    time.sleep(0.2)  # the connection reaches the graph
    play(out, phrase(args.seconds))
    out.close_port()
    return 0


if __name__ == "__main__":
    sys.exit(main())
