"""What the audio callback's mixing costs: ``Mixer.mix`` (NumPy) and the compiled core
(``compiled_mixer.CompiledMixer``) timed block by block, for held notes alone and under a
morph-knob sweep, optionally beside the NumPy mixer of another git revision.

    python benchmarks/bench_mixer.py [--voices 1,8,32] [--blocks 1400] [--rounds 5]
        [--against REV]

The live callback runs ``Mixer.mix`` and little else (``audio_process._MixSide``: the command
pipe, the meters), so this times the mixing apart from the machine's scheduling (CPU time of
the mixing thread: time other processes take while it waits is not counted): when xruns rise
on a shared machine, it says whether the callback's own work grew. Live figures (the stream's
callback time, xruns beside a silent client) come from bench_live.py and bench_quality.py.

Setup as in live play: 48 kHz, 128-frame blocks, 32-voice polyphony, a stereo bus (the channel
panned, so both sides are mixed) with the master bus (gain and limiter). Notes: 4 s int16
waveforms at the model's 16 kHz (noise: what they hold does not change the mixer's work), so a
round is at most the 1,500 blocks a note sounds. The sweep sends a morph to every held voice
at each of 86 CC1 steps over 3 s, 0 → 1 → 0 along 9 morph steps, as
bench_quality.py's knob sweep does.
``--against REV`` also times ``gansynth_instrument/live/mixer.py`` as it was at REV (e.g. the commit
before the General MIDI merge, whose commands carry no MIDI channel and whose bus was mono).

Prints per scenario the median, p99 and max CPU microseconds per block over the rounds' blocks (the
first 100 of each round left out: first-touch page faults), the median as a share of the block
period, and its ratio to the held note with one voice of the same mixer in the same run (the
floor), and its ratio to the NumPy mixer of this tree in the same scenario. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gansynth_instrument.live import mixer as current_mixer  # noqa: E402
from gansynth_instrument.live.compiled_mixer import CompiledMixer  # noqa: E402
from gansynth_instrument.notes.levels import MasterBus  # noqa: E402
from gansynth_instrument.notes.note import Note  # noqa: E402

RATE = 48000
BLOCK = 128
NOTE_RATE = 16000
NOTE_FRAMES = 4 * NOTE_RATE
MORPH_STEPS = 9
SWEEP_S = 3.0
SWEEP_MESSAGES = 86
WARM_BLOCKS = 100


def mixer_at(rev: str) -> ModuleType:
    """``gansynth_instrument/live/mixer.py`` as it was at ``rev``, imported as a module of its own
    (a revision after the move into folders)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:gansynth_instrument/live/mixer.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench-mixer-")) / "mixer_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mixer_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compiled_module() -> ModuleType:
    """``mixer.py``'s names with ``Mixer`` the compiled one, for ``time_blocks``."""
    module = ModuleType("compiled_mixer_shim")
    module.__dict__.update(vars(current_mixer))
    module.Mixer = CompiledMixer
    return module


def morph_notes() -> list[Note]:
    rng = np.random.default_rng(0)
    return [
        Note(
            pcm=(rng.standard_normal(NOTE_FRAMES) * 3000).astype(np.int16),
            gain=1.0 / 32768,
            pitch=60,
            sample_rate=NOTE_RATE,
            reference=0.5,
        )
        for _ in range(MORPH_STEPS)
    ]


def time_blocks(module: ModuleType, voices: int, sweep: bool, blocks: int) -> np.ndarray:
    """CPU microseconds of each ``mix`` call, ``blocks`` blocks with ``voices`` held notes."""
    channel_field = hasattr(module, "MIDI_CHANNELS")  # since the General MIDI merge
    mixer = module.Mixer(
        RATE,
        polyphony=32,
        channels=2,
        max_block_frames=1024,
        master=MasterBus(RATE, channels=2 if channel_field else 1, max_block_frames=1024),
    )
    steps = morph_notes()
    if channel_field:
        mixer.send((module.IMMEDIATE, module.CMD_GAIN, 0, 0.8, 0.6))  # panned: both sides mixed
    for slot in range(voices):
        on = (module.IMMEDIATE, module.CMD_NOTE_ON, slot, slot + 1, steps[0], 1.0, None, 1.0)
        on += (0.0, 0.8, round(0.01 * RATE), round(0.3 * RATE))
        mixer.send(on + ((0,) if channel_field else ()))
    every = max(1, round(SWEEP_S / SWEEP_MESSAGES * RATE / BLOCK))  # blocks between CC steps
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    times = np.empty(blocks)
    for b in range(blocks):
        if sweep and b % every == 0:
            step = (b // every) % (2 * SWEEP_MESSAGES)
            x = step if step < SWEEP_MESSAGES else 2 * SWEEP_MESSAGES - step
            t = x / SWEEP_MESSAGES * (MORPH_STEPS - 1)
            i = min(int(t), MORPH_STEPS - 2)
            for slot in range(voices):
                morph = (steps[i], 1.0, steps[i + 1], 1.0, t - i)
                mixer.send((module.IMMEDIATE, module.CMD_MORPH, slot, slot + 1, *morph))
        start = time.thread_time()
        mixer.mix(out, BLOCK)
        times[b] = time.thread_time() - start
    return 1e6 * times[WARM_BLOCKS:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", default="1,8,32", help="held voices per scenario (1,8,32)")
    parser.add_argument("--blocks", type=int, default=1400, help="blocks per round (1400)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, interleaved (5)")
    parser.add_argument("--against", metavar="REV", help="also time the mixer at this revision")
    args = parser.parse_args(argv)
    sounding = NOTE_FRAMES * RATE // NOTE_RATE // BLOCK
    if not WARM_BLOCKS < args.blocks <= sounding:
        parser.error(f"--blocks must be {WARM_BLOCKS + 1}..{sounding}: the notes end after that")
    mixers = [("numpy", current_mixer), ("compiled", compiled_module())]
    if args.against:
        mixers.append((args.against, mixer_at(args.against)))
    scenarios = [(int(v), sweep) for v in args.voices.split(",") for sweep in (False, True)]
    runs: dict[tuple[str, int, bool], list[np.ndarray]] = {}
    for _ in range(args.rounds):  # interleaved, so that other load falls on every scenario
        for voices, sweep in scenarios:
            for name, module in mixers:
                runs.setdefault((name, voices, sweep), []).append(
                    time_blocks(module, voices, sweep, args.blocks)
                )
    period_us = 1e6 * BLOCK / RATE
    print(f"mix, CPU us per {BLOCK}-frame block at {RATE} Hz ({period_us:.0f} us period)")
    header = f"{'mixer':<12} {'voices':>6} {'knob sweep':>10} {'median':>8} {'p99':>8} {'max':>8}"
    print(f"{header} {'% period':>9} {'/ floor':>8} {'/ numpy':>8}")
    medians = {key: float(np.median(np.concatenate(t))) for key, t in runs.items()}
    for (name, voices, sweep), times in runs.items():
        t = np.concatenate(times)
        median = medians[name, voices, sweep]
        row = (
            f"{name:<12} {voices:>6} {'yes' if sweep else 'no':>10} {median:>8.0f} "
            f"{np.percentile(t, 99):>8.0f} {t.max():>8.0f} {100 * median / period_us:>8.1f}% "
            f"{median / medians[name, 1, False]:>8.2f} "
            f"{median / medians['numpy', voices, sweep]:>8.2f}"
        )
        print(row)
    print(f"floor: the same mixer, 1 held voice; {args.rounds} rounds of {args.blocks} blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
