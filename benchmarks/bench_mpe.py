"""MPE figures (issue 30) on a JACK dummy server (48 kHz), through the real ``play`` path.

    python benchmarks/bench_mpe.py [--model MODEL.onnx] [--takes 6] [--floor-notes 20]
        [--no-realtime] [--skip-cost]

A player with a lower zone forced (``--mpe lower``), its slide on knob 1, a looping copy of
slow-pad (held notes sustain), MIDI from a JACK client and its output recorded by another, as
tests/live/test_mpe_live.py does (two notes on member channels 2 and 3, panned left and right,
so each side is one note). Every stop a slid note passes is made before it is measured. It prints:

1. Per-note independence. Channel 2's CC74 sweeps 0 → 127 over 1 s while channel 3 holds;
   log-spectral distance (spectral shapes, each normalised to its energy, 60 Hz-8 kHz) of each
   note measured two ways: from its own start (0.6-0.95 s in) to after the sweep (2.1-2.45 s
   in), the issue's wording; and after the sweep against the same note in an untouched take at
   the same time since its onset, which a note's own drift over time (its loop, its decay) does
   not count in. An untouched take against another untouched take is the noise.
2. Clicks: a 3 s CC74 sweep (0 → 127 → 0) on one of two held notes against the same two notes
   untouched: runs of 1 ms frames with energy above 10 kHz over −40 dB re the note's RMS
   (``bench_knobs.clicks``), per side.
3. Response: CC74 0 → 127 on a held note whose stops are made, one jump per take; the first
   recorded sample that departs (by −40 dB re the note's RMS) from an untouched take aligned on
   the note's onset, minus the send time (the recorder's cycle clock, as bench_live measures).
4. Cost at 128 frames: bench_live's floor (a minimal Python instrument), the player with the
   floor's notes (MPE off), and the player with the same notes as MPE (member channels 2-5, each
   note with CC74 and pressure before its note-on and while held, to made stops): latency
   (send → first sample above −80 dBFS) and xruns, all on one fresh server.

Nothing is asserted; timings on a shared machine are noisy, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the live-test rig and the MPE test's helpers
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_live  # noqa: E402
from bench_knobs import clicks  # noqa: E402
from jackrig import JackServer  # noqa: E402
from live.test_mpe_live import RATE, mpe_player, onset, record, shape, two_notes, warm  # noqa: E402

from gansynth_instrument.live.config import Sounds  # noqa: E402
from gansynth_instrument.live.player import DEFAULT_RENDERER, Player  # noqa: E402
from gansynth_instrument.model.runtime import load_model, model_path  # noqa: E402
from gansynth_instrument.notes.note_queue import Priority  # noqa: E402
from gansynth_instrument.presets.ganspace import knob_directions  # noqa: E402

BEFORE_S, AFTER_S, WINDOW_S = 0.6, 2.1, 0.35  # the test's windows, from each note's onset
TAKE_S = 2.8
SWEEP_START_S, SWEEP_S = 0.8, 3.0
CHANGE_DB = -40.0  # a departure from the untouched take this far below the note's RMS is heard
JUMP_S = 0.6  # the response takes' CC74 jump, after the note's attack (plus a few ms each)


def window(side: np.ndarray, start_s: float) -> np.ndarray:
    at = onset(side) + round(start_s * RATE)
    return side[at : at + round(WINDOW_S * RATE)]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Log-spectral distance (dB) of two pieces' spectral shapes."""
    return float(np.sqrt(np.mean((shape(a) - shape(b)) ** 2)))


def from_start(take: np.ndarray, side: int) -> float:
    """A note's distance from its own start to after the sweep."""
    s = take[:, side]
    return distance(window(s, BEFORE_S), window(s, AFTER_S))


def against(take: np.ndarray, reference: np.ndarray, side: int) -> float:
    """A note after the sweep against the reference take's same note at the same time."""
    return distance(window(take[:, side], AFTER_S), window(reference[:, side], AFTER_S))


def independence(sender, takes: int) -> list[tuple[str, float, float, float]]:
    """(measure, sliding, held, untouched) distances in dB, medians over ``takes`` takes."""
    rows: dict[str, list[tuple[float, float, float]]] = {"from start": [], "vs untouched": []}
    for _ in range(takes):
        plain = [record(sender, two_notes(sweep=False), TAKE_S) for _ in range(2)]
        slid = record(sender, two_notes(sweep=True), TAKE_S)
        noise = max(from_start(plain[0], side) for side in (0, 1))
        rows["from start"].append((from_start(slid, 0), from_start(slid, 1), noise))
        noise = max(against(plain[1], plain[0], side) for side in (0, 1))
        rows["vs untouched"].append((against(slid, plain[0], 0), against(slid, plain[0], 1), noise))
    return [
        (name, *(statistics.median(v[i] for v in values) for i in range(3)))
        for name, values in rows.items()
    ]


def sweep_script(sweep: bool) -> list[tuple[float, list[int]]]:
    """Two held notes (channel 2 left, 3 right); channel 2's CC74 0 → 127 → 0 over SWEEP_S."""
    script = [(0.0, [0xB1, 10, 0]), (0.0, [0xB2, 10, 127]), (0.0, [0xB1, 74, 0])]
    script += [(0.05, [0x91, 60, 110]), (0.05, [0x92, 64, 110])]
    steps = 100
    if sweep:
        for i in range(steps + 1):
            value = round(127 * (1 - abs(2 * i / steps - 1)))
            script.append((SWEEP_START_S + SWEEP_S * i / steps, [0xB1, 74, value]))
    end = SWEEP_START_S + SWEEP_S + 0.3
    return [*script, (end, [0x81, 60, 0]), (end, [0x82, 64, 0])]


def sweep_clicks(sender) -> list[tuple[str, int, int]]:
    """(take, clicks left, clicks right) over the sweep's time, untouched and swept."""
    seconds = SWEEP_START_S + SWEEP_S + 0.6
    rows = []
    for name, sweep in (("untouched", False), ("CC74 swept on ch 2", True)):
        take = record(sender, sweep_script(sweep), seconds)
        counts = []
        for side in (0, 1):
            s = take[:, side].astype(np.float64)
            a = onset(s) + round((SWEEP_START_S - 0.05) * RATE)
            piece = s[a : a + round((SWEEP_S + 0.1) * RATE)]
            counts.append(clicks(piece, float(np.sqrt(np.mean(piece**2))), RATE))
        rows.append((name, *counts))
    return rows


def response(model, notes: Path, takes: int) -> tuple[list[float], float]:
    """CC74 → audible change (ms) per aligned take, and the largest difference (dB re the
    note's RMS) of a take from the untouched one before its jump: a take over CHANGE_DB there
    did not align (a block lost to an xrun) and is left out."""
    args = argparse.Namespace(renderer=DEFAULT_RENDERER)
    player, port = bench_live.new_player(
        model,
        args,
        notes,
        Sounds(_looping_pad()),
        knobs=knob_directions(model, cache_dir=notes / "knobs", progress=False),
        sample_rate=RATE,
        mpe="lower",
    )
    start = [(0.0, [0xB1, 10, 0]), (0.0, [0xB1, 74, 0]), (0.05, [0x91, 60, 110])]
    end = [(1.1, [0x81, 60, 0])]
    with player:
        warm(player, {60: True})
        reference = bench_live.measure(port, [*start, *end], 1.3)
        ref = reference.audio.astype(np.float64)
        ref_on = onset(ref)
        delays, residual = [], []
        for k in range(takes):
            jump_s = JUMP_S + 0.0013 * k  # a different phase in the block each take
            script = [*start, (jump_s, [0xB1, 74, 127]), *end]
            take = bench_live.measure(port, script, 1.3)
            audio = take.audio.astype(np.float64)
            on = onset(audio)
            n = min(len(audio) - on, len(ref) - ref_on)
            diff = np.abs(audio[on : on + n] - ref[ref_on : ref_on + n])
            held = ref[ref_on + round(0.3 * RATE) : ref_on + round(0.55 * RATE)]
            level = float(np.sqrt(np.mean(held**2))) * 10 ** (CHANGE_DB / 20)
            sent_frame = take.frame_at(take.sent_s[3]) - on  # the jump, in note frames
            search = max(sent_frame - bench_live.BLOCK, 0)
            before = diff[round(0.1 * RATE) : search].max()
            residual.append(20 * np.log10(max(before, 1e-12) / level) + CHANGE_DB)
            if before > level:  # the takes do not align (a block lost to an xrun): left out
                continue
            changed = np.flatnonzero(diff[search:] > level)
            if len(changed):
                delays.append(1e3 * (take.wall_s(on + search + int(changed[0])) - take.sent_s[3]))
    worst = max(residual)
    return delays, float(worst)


def _looping_pad():
    from gansynth_instrument.presets.preset_files import find_preset

    return find_preset("slow-pad").copy(loop=True)


def mpe_floor_script(notes: int) -> tuple[list[tuple[float, list[int]]], list[int]]:
    """The floor's notes as MPE: note i on member channel 2 + i % 4, its CC74 and pressure set
    before its note-on, then 8 slide and pressure moves while held (to made stops)."""
    script, measured = [], []
    plain, _ = bench_live.floor_script(notes)
    ons = [(at, msg) for at, msg in plain if msg[0] == 0x90]
    for i, (at, msg) in enumerate(ons):
        channel = 1 + i % 4
        script += [(at - 0.01, [0xB0 | channel, 74, 0]), (at - 0.01, [0xD0 | channel, 0])]
        if i >= bench_live.FLOOR_WARMUP:
            measured.append(len(script))
        script.append((at, [0x90 | channel, msg[1], 100]))
        for k in range(1, 9):
            t = at + k * bench_live.FLOOR_HOLD_S / 10
            script += [(t, [0xB0 | channel, 74, 16 * k - 1]), (t, [0xD0 | channel, 12 * k])]
        script.append((at + bench_live.FLOOR_HOLD_S, [0x80 | channel, msg[1], 0]))
    return script, measured


def warm_slides(player: Player) -> None:
    """Every stop of knob 1's line at the floor's pitches, made before the MPE notes."""
    line = player.with_engine(lambda e: e.space.turn(0, 64)[0])
    pitches = list(bench_live.FLOOR_PITCHES)
    for timbre in line:
        player.cache.request(timbre.latent, pitches, Priority.WAITING)
    for timbre in line:
        assert player.cache.wait(timbre.key, pitches, bench_live.WAIT_S)


def cost(model, notes: int, realtime: bool) -> list[tuple[str, dict[str, object]]]:
    args = argparse.Namespace(renderer=DEFAULT_RENDERER)
    knobs = knob_directions(model, cache_dir=Path(tempfile.gettempdir()) / "bench-mpe-knobs")
    block = bench_live.BLOCK
    with (
        tempfile.TemporaryDirectory() as tmp,
        JackServer(sample_rate=RATE, period_frames=block, realtime=realtime),
    ):
        floor = bench_live.floor_run(block, notes)
        off = bench_live.instrument_run(
            model, args, block, Path(tmp) / "off", notes, knobs=knobs, sample_rate=RATE
        )
        on = bench_live.instrument_run(
            model,
            args,
            block,
            Path(tmp) / "on",
            notes,
            script=mpe_floor_script(notes),
            warm_up=warm_slides,
            knobs=knobs,
            sample_rate=RATE,
            mpe="lower",
        )
    return [("floor", floor), ("MPE off", off), ("MPE on", on)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--takes", type=int, default=6, help="takes per figure (6)")
    parser.add_argument("--floor-notes", type=int, default=20, help="the cost's notes (20)")
    parser.add_argument("--no-realtime", action="store_true", help="jackd without -R")
    parser.add_argument("--skip-cost", action="store_true", help="no MPE on/off cost run")
    args = parser.parse_args()
    model = load_model(model_path(args.model))
    name = model_path(args.model).name
    with tempfile.TemporaryDirectory() as tmp:
        notes = Path(tmp)
        knobs = knob_directions(model, cache_dir=notes / "knobs", progress=False)
        with JackServer(sample_rate=RATE, period_frames=128, realtime=not args.no_realtime):
            with mpe_player((model, knobs, notes), mpe="lower") as (player, sender):
                warm(player, {60: True, 64: False})
                distances = independence(sender, args.takes)
                click_rows = sweep_clicks(sender)
            delays, residual = response(model, notes, args.takes)
    print(
        f"bench_mpe: {name}, slow-pad looping, slide → knob 1, jackd dummy {RATE} Hz 128 frames "
        f"{'non-RT' if args.no_realtime else 'RT'}; load {os.getloadavg()[0]:.1f}, "
        f"{len(os.sched_getaffinity(0))} cores shared"
    )
    print(f"1. independence, log-spectral distance dB (median of {args.takes} takes)")
    print(f"   {'measure':<13} {'sliding':>8} {'held':>6} {'untouched':>9} {'slide/held':>10}")
    for measure, sliding, held, noise in distances:
        print(
            f"   {measure:<13} {sliding:>8.2f} {held:>6.2f} {noise:>9.2f} "
            f"{sliding / max(held, 1e-9):>10.1f}x"
        )
    print(f"2. clicks over a {SWEEP_S:g} s CC74 sweep (ch 2 left, ch 3 right held)")
    for take, left, right in click_rows:
        print(f"   {take:<20} left {left:>3}  right {right:>3}")
    print(
        f"3. CC74 0 → 127 → audible change ({CHANGE_DB:g} dB), stops made: {len(delays)} of "
        f"{args.takes} takes aligned"
    )
    if delays:
        print(
            f"   median {statistics.median(delays):.1f} ms, min {min(delays):.1f}, "
            f"max {max(delays):.1f}; before the jump takes differed by ≤ {residual:.0f} dB re RMS"
        )
    if args.skip_cost:
        return
    rows = cost(model, args.floor_notes, not args.no_realtime)
    print(f"4. cost at 128 frames, {args.floor_notes} notes, one server")
    print(f"   {'who':<8} {'lat med ms':>10} {'lat max ms':>10} {'xruns':>6} {'missed':>6}")
    for who, run in rows:
        ms = run["latencies_ms"]
        print(
            f"   {who:<8} {statistics.median(ms):>10.2f} {max(ms):>10.2f} {run['xruns']:>6} "
            f"{run['missed']:>6}"
        )


if __name__ == "__main__":
    main()
