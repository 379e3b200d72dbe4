"""The drum track alone against FluidSynth's (issue 29's figure: onset-envelope correlation ≥ 0.6
at a lag ≤ 10 ms): each General MIDI song's channel 10, its first ``--seconds``, rendered by
``render --channels 10`` (the default bank's kit, or ``--drums KIT``) and by FluidSynth
(TimGM6mb); prints per song the drum hits, the correlation and its lag.

    python benchmarks/bench_drums.py [SONG.mid ...] [--seconds 1000] [--drums KIT]

Without songs it takes every OpenMSX song (Debian's openttd-openmsx).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import mido
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the test helpers: MIDI writer, onsets
from midi_writer import write_midi  # noqa: E402
from onsets import fluidsynth_render, onset_correlation  # noqa: E402

from gansynth_instrument.cli import main  # noqa: E402
from gansynth_instrument.offline.midi_file import read_midi  # noqa: E402

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
RATE = 48000


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("songs", nargs="*", type=Path)
    parser.add_argument("--seconds", type=float, default=1000.0)
    parser.add_argument("--drums", help="a kit or preset for channel 10 (default: the bank's)")
    args = parser.parse_args()
    songs = args.songs or sorted(OPENMSX.glob("*.mid"))
    extra = ["--drums", args.drums] if args.drums else []
    with tempfile.TemporaryDirectory() as tmp:
        for song in songs:
            events = [e for e in read_midi(song) if e.time_s < args.seconds]
            hits = sum(1 for e in events if e.data[0] == 0x99 and e.data[2] > 0)
            if not hits:
                print(f"{song.name}: no drum notes")
                continue
            messages = [(e.time_s, mido.Message.from_bytes(list(e.data))) for e in events]
            excerpt = write_midi(Path(tmp) / song.name, messages)
            wav = Path(tmp) / "drums.wav"
            with contextlib.redirect_stdout(io.StringIO()):
                main(["render", str(excerpt), "-o", str(wav), "--channels", "10", *extra])
            ours, _ = sf.read(wav, dtype="float32")
            theirs = fluidsynth_render(excerpt, SOUNDFONT, RATE, channels={9})
            corr, lag = onset_correlation(ours, theirs, RATE)
            print(f"{song.name}: {hits} hits, correlation {corr:.3f} at {lag * 1e3:+.0f} ms")


if __name__ == "__main__":
    run()
