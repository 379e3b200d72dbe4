"""Each General MIDI drum key's level in a kit against FluidSynth's (TimGM6mb): one hit per key at
velocity 100, a second apart, rendered by ``render --drums KIT`` and by FluidSynth; prints per key
the loudest 10 ms RMS frame of each, in dBFS, and the kit ``gain_db`` that would put the hit at
FluidSynth's level plus ``--offset`` dB (the melodic channels' own offset against FluidSynth).

    python benchmarks/kit_levels.py [--kit gm-kit] [--offset 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the test helpers: MIDI writer, onsets
from midi_writer import write_midi  # noqa: E402
from onsets import fluidsynth_render  # noqa: E402

from gansynth_instrument.cli import main  # noqa: E402
from gansynth_instrument.presets.kit import Kit  # noqa: E402
from gansynth_instrument.presets.preset_files import find_kit_or_preset  # noqa: E402

SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
RATE = 48000
KEYS = range(35, 82)


def hit_levels(audio: np.ndarray) -> list[float]:
    """The loudest 10 ms RMS frame (dBFS) in each key's second."""
    mono = audio.mean(axis=1)
    hop = RATE // 100
    levels = []
    for i in range(len(KEYS)):
        part = mono[i * RATE : (i + 1) * RATE]
        frames = len(part) // hop
        rms = np.sqrt((part[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1))
        levels.append(20 * np.log10(max(float(rms.max()), 1e-9)))
    return levels


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="gm-kit")
    parser.add_argument("--offset", type=float, default=10.0)
    args = parser.parse_args()
    kit = find_kit_or_preset(args.kit)
    if not isinstance(kit, Kit):
        raise SystemExit(f"{args.kit} is a preset, not a drum kit")
    with tempfile.TemporaryDirectory() as tmp:
        hits = []
        for i, key in enumerate(KEYS):
            hits.append((float(i), mido.Message("note_on", channel=9, note=key, velocity=100)))
            hits.append((i + 0.5, mido.Message("note_off", channel=9, note=key)))
        midi = write_midi(Path(tmp) / "keys.mid", hits)
        wav = Path(tmp) / "kit.wav"
        with contextlib.redirect_stdout(io.StringIO()):
            main(["render", str(midi), "-o", str(wav), "--drums", args.kit])
        ours, _ = sf.read(wav, dtype="float32")
        fluid = fluidsynth_render(midi, SOUNDFONT, RATE, channels={9})
    for key, mine, theirs in zip(KEYS, hit_levels(ours), hit_levels(fluid), strict=True):
        gain = kit.sounds[key].gain_db if key in kit.sounds else 0.0
        suggested = gain + theirs + args.offset - mine
        print(
            f"{key:3d}  kit {mine:6.1f} dBFS  FluidSynth {theirs:6.1f} dBFS  "
            f"gain_db {suggested:+.0f}"
        )


if __name__ == "__main__":
    run()
