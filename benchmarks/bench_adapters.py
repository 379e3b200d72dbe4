"""The live path's floor: MIDI in → audio out through midi.py and audio.py alone, no engine.

    python benchmarks/bench_adapters.py [--notes 100] [--interval-ms 40] [--realtime]

Starts a private JACK dummy server (48 kHz, 128 frames; ``--realtime`` runs jackd with -R), opens a
virtual MIDI port with ``MidiInput`` and an ``AudioOutput`` whose mix function starts a 5 ms
burst at the block after each note-on arrives. A separate JACK client sends the notes, another
records PortAudio's output. Latency = wall clock of the recorder cycle holding a burst's first
sample minus wall clock at send (as in ../shared/docs/realtime-rig.md). Whatever the engine adds
(voice allocation, mixing) comes on top of these figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from jackrig import JackServer, MidiSender, Recorder, midi_input_port

from gansynth_instrument.live.audio import AudioOutput
from gansynth_instrument.live.midi import MidiInput

SAMPLE_RATE = 48000
BLOCK_FRAMES = 128
BURST_FRAMES = 240  # 5 ms: shorter than any note interval, so bursts never merge
BURST_LEVEL = 0.5


class Bursts:
    """MIDI handle + mix function: each note-on queues a burst that the next block starts."""

    def __init__(self) -> None:
        self.pending: deque[int] = deque()
        self.left_frames = 0

    def handle(self, msg: list[int]) -> None:
        if msg[0] & 0xF0 == 0x90 and msg[2] > 0:
            self.pending.append(msg[1])

    def mix(self, out: np.ndarray, frames: int) -> None:
        while self.pending:
            self.pending.popleft()
            self.left_frames = BURST_FRAMES
        n = min(frames, self.left_frames)
        out[:n] = BURST_LEVEL
        out[n:] = 0.0
        self.left_frames -= n


def onsets(signal: np.ndarray) -> np.ndarray:
    """Frames where the signal turns non-silent after silence."""
    loud = np.abs(signal) > BURST_LEVEL / 2
    return np.flatnonzero(loud[1:] & ~loud[:-1]) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=40.0)
    parser.add_argument("--realtime", action="store_true", help="run jackd with -R")
    parser.add_argument("--sync", action="store_true", help="run jackd in synchronous mode (-S)")
    args = parser.parse_args()

    bursts = Bursts()
    seconds = args.notes * args.interval_ms / 1000 + 1.0
    server = JackServer(
        sample_rate=SAMPLE_RATE, period_frames=BLOCK_FRAMES, realtime=args.realtime, sync=args.sync
    )
    with server:
        # MIDI before audio: rtmidi holds the GIL while its JACK client opens (see midi.py).
        midi_in = MidiInput(bursts.handle, virtual="bench", client_name="bench-adapters")
        output = AudioOutput(bursts.mix, sample_rate=SAMPLE_RATE, block_frames=BLOCK_FRAMES)
        output.start()
        sender = MidiSender()
        sender.connect(midi_input_port(sender.client, "bench-adapters.*:bench"))
        recorder = Recorder(seconds=seconds).start()
        time.sleep(0.2)
        before = output.stats()
        sent_s = []
        for i in range(args.notes):
            sent_s.append(sender.send([0x90, 60 + i % 12, 100]))
            time.sleep(args.interval_ms / 1000)
        recorder.wait(timeout_s=seconds + 10)
        stats = output.stats()
        recorder.close()
        sender.close()
        output.stop()
        output.close()
        midi_in.close()

    # Each note's latency: the first captured onset after its send and before the next note.
    onset_wall_s = np.array([recorder.wall_time_s(int(f)) for f in onsets(recorder.buffer[:, 0])])
    interval_s = args.interval_ms / 1000
    latency_ms = []
    for sent in sent_s:
        later = onset_wall_s[(onset_wall_s >= sent) & (onset_wall_s < sent + interval_s)]
        if len(later):
            latency_ms.append(1e3 * (later[0] - sent))
    latency_ms = np.array(latency_ms)
    period_ms = 1e3 * stats.block_period_s
    rows = [
        ("notes sent / heard within the interval", f"{len(sent_s)} / {len(latency_ms)}"),
        ("MIDI send → captured onset, median", f"{np.median(latency_ms):.2f} ms"),
        ("  p99", f"{np.percentile(latency_ms, 99):.2f} ms"),
        ("  max", f"{latency_ms.max():.2f} ms"),
        ("xruns while sending (stream status flags)", f"{stats.xruns - before.xruns}"),
        ("callbacks", f"{stats.callbacks}"),
        (
            "callback time, median",
            f"{1e3 * stats.callback_median_s:.3f} ms "
            f"({100 * stats.callback_median_load:.1f} % of {period_ms:.2f} ms)",
        ),
        (
            "callback time, max",
            f"{1e3 * stats.callback_max_s:.3f} ms ({100 * stats.callback_max_load:.1f} %)",
        ),
        ("reported output latency", f"{1e3 * stats.latency_s:.2f} ms"),
        ("DAC latency (PortAudio timestamps)", f"{1e3 * stats.dac_latency_s:.2f} ms"),
    ]
    load = os.getloadavg()[0]
    mode = ("-R" if args.realtime else "--no-realtime") + (" --sync" if args.sync else "")
    print(
        f"JACK dummy {SAMPLE_RATE} Hz / {BLOCK_FRAMES} frames, jackd {mode}, "
        f"{os.cpu_count()} CPUs, load {load:.1f}"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
