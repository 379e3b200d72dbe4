"""MPE figures (issue 30) on a JACK dummy server (48 kHz), through the real ``play`` path.

    python benchmarks/bench_mpe.py [--model MODEL.onnx] [--takes 6] [--floor-notes 20]
        [--no-realtime] [--skip-cost]

A player with a lower zone forced (``--mpe lower``), its slide on knob 1, a looping copy of
slow-pad with a 0.25 s release (held notes sustain; each take starts after the last one's tail),
MIDI sent and the output recorded from a separate process (``bench_live.measure``: the
recorder's Python callback must not wait on the player's GIL), two notes on member channels 2
and 3 panned hard left and right, so each side is one note. Every stop a slid note passes is
made before it is measured. A take with an xrun (the player's stream counts the server's) is
taken again, up to TRIES times: one dropped block moves a 0.35 s piece's spectral shape by
~6 dB and clicks on both sides. It prints:

1. Per-note independence. Channel 2's CC74 sweeps 0 → 127 over 1 s while channel 3 holds;
   log-spectral distance (spectral shapes, each normalised to its energy, 60 Hz-8 kHz) of each
   note measured two ways: from its own start (0.6-0.95 s in) to after the sweep (2.1-2.45 s
   in), the issue's wording (the note's own drift, its attack and loop, counts in it); and
   after the sweep against the same note in an untouched take at the same time since its
   onset. An untouched take against another untouched take is the noise.
2. Clicks: a 3 s CC74 sweep (0 → 127 → 0, 101 messages) on one of two held notes against the
   same two notes untouched: runs of 1 ms frames with energy above 10 kHz over −40 dB re the
   note's RMS (``bench_quality.click_frames``), per side; a side's *own* clicks are those with
   none on the other side within SHARED_MS (a dropped block clicks on both).
3. Response: CC74 0 → 127 on a held note whose stops are made, one jump per take; the first
   recorded sample that departs (by −40 dB re the note's RMS) from an untouched take aligned on
   the note's onset, minus the send time (the recorder's cycle clock, as bench_live measures).
4. Cost at 128 frames: bench_live's floor (a minimal Python instrument), the player with the
   floor's notes (MPE off), the player with the same notes as MPE (member channels 2-5, each
   note with CC74 and pressure before its note-on and while held, to made stops), and the
   floor again, all on one fresh server: latency (send → first sample above −80 dBFS) and
   xruns. MPE's cost is within the floor when MPE on − off moves the median latency no more
   than the floor moved between its two runs (or half a period, whichever is more) and adds no
   more xruns than a floor run had.

Nothing is asserted; timings on a shared machine are noisy, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the live-test rig and the MPE test's helpers
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_live  # noqa: E402
from bench_quality import click_frames  # noqa: E402
from jackrig import JackServer  # noqa: E402
from live.test_mpe_live import (  # noqa: E402
    AFTER_S,
    RATE,
    RELEASE_S,
    distance,
    onset,
    pad,
    two_notes,
    warm,
    window,
)

from gansynth_instrument.live.config import Sounds  # noqa: E402
from gansynth_instrument.live.player import DEFAULT_RENDERER, Player  # noqa: E402
from gansynth_instrument.model.runtime import load_model, model_path  # noqa: E402
from gansynth_instrument.notes.note_queue import Priority  # noqa: E402
from gansynth_instrument.presets.ganspace import knob_directions  # noqa: E402

BEFORE_S = 0.6  # the test's window before the sweep, from each note's onset
TAKE_S = 2.8
SWEEP_START_S, SWEEP_S = 0.8, 3.0
CHANGE_DB = -40.0  # a departure from the untouched take this far below the note's RMS is heard
JUMP_S = 0.6  # the response takes' CC74 jump, after the note's attack (plus a few ms each)
TRIES = 4  # takes with an xrun are taken again, up to this many times
SHARED_MS = 2  # a click on both sides within this many ms is the output's, not one note's


def take(player: Player, port: str, script, seconds: float) -> tuple[bench_live.Capture, int, int]:
    """One stereo take from the measuring process, taken again (up to TRIES times) while it had
    an xrun: (capture, the xruns of the take kept, tries)."""
    xruns: list[int] = []

    def mark() -> None:
        xruns.append(player.audio.stats().xruns)

    tries = 0
    while True:
        tries += 1
        time.sleep(RELEASE_S + 0.15)  # the last take's release has ended
        xruns.clear()
        capture = bench_live.measure(port, script, seconds, mark, mark, stereo=True)
        if xruns[1] == xruns[0] or tries == TRIES:
            return capture, xruns[1] - xruns[0], tries


def from_start(audio: np.ndarray, side: int) -> float:
    """A note's distance from its own start to after the sweep."""
    s = audio[:, side]
    return distance(window(s, BEFORE_S), window(s, AFTER_S))


def against(audio: np.ndarray, reference: np.ndarray, side: int) -> float:
    """A note after the sweep against the reference take's same note at the same time."""
    return distance(window(audio[:, side], AFTER_S), window(reference[:, side], AFTER_S))


def independence(player: Player, port: str, takes: int):
    """(measure, sliding, held, untouched) distances in dB, medians over ``takes`` rounds of two
    untouched takes and a slid one; and the takes left with an xrun."""
    rows: dict[str, list[tuple[float, float, float]]] = {"from start": [], "vs untouched": []}
    dirty = 0
    for _ in range(takes):
        plain, slid = [], None
        for sweep in (False, False, True):
            capture, xruns, _ = take(player, port, two_notes(sweep=sweep), TAKE_S)
            audio = capture.audio.astype(np.float64)
            dirty += xruns > 0
            if sweep:
                slid = audio
            else:
                plain.append(audio)
        noise = max(from_start(plain[0], side) for side in (0, 1))
        rows["from start"].append((from_start(slid, 0), from_start(slid, 1), noise))
        noise = max(against(plain[1], plain[0], side) for side in (0, 1))
        rows["vs untouched"].append((against(slid, plain[0], 0), against(slid, plain[0], 1), noise))
    medians = [
        (name, *(statistics.median(v[i] for v in values) for i in range(3)))
        for name, values in rows.items()
    ]
    return medians, dirty


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


def side_clicks(audio: np.ndarray) -> tuple[list[int], list[int]]:
    """Each side's clicks (1 ms frames from the sweep's start) over the sweep's time."""
    counts = []
    for side in (0, 1):
        s = audio[:, side]
        a = onset(s) + round((SWEEP_START_S - 0.05) * RATE)
        piece = slice(a, a + round((SWEEP_S + 0.1) * RATE))
        counts.append(list(click_frames(s, piece, float(np.sqrt(np.mean(s[piece] ** 2))))))
    return counts[0], counts[1]


def own(mine: list[int], other: list[int]) -> int:
    """Clicks of one side with none on the other side within SHARED_MS: that note's own (the
    notes are panned hard apart; a dropped block clicks on both)."""
    return sum(all(abs(m - o) > SHARED_MS for o in other) for m in mine)


def sweep_clicks(player: Player, port: str, takes: int):
    """(take, left, right, left's own, right's own) clicks, medians over ``takes`` takes of
    each, and the xruns its kept takes had (summed) and its tries."""
    seconds = SWEEP_START_S + SWEEP_S + 0.6
    rows = []
    counts: dict[str, list[tuple[int, int, int, int]]] = {}
    xruns: dict[str, list[tuple[int, int]]] = {}
    for _ in range(takes):
        for name, sweep in (("untouched", False), ("CC74 swept on ch 2", True)):
            capture, kept, tries = take(player, port, sweep_script(sweep), seconds)
            left, right = side_clicks(capture.audio.astype(np.float64))
            counts.setdefault(name, []).append(
                (len(left), len(right), own(left, right), own(right, left))
            )
            xruns.setdefault(name, []).append((kept, tries))
    for name, values in counts.items():
        medians = (statistics.median(v[i] for v in values) for i in range(4))
        runs = xruns[name]
        rows.append((name, *medians, sum(k for k, _ in runs), sum(t for _, t in runs)))
    return rows


def response(player: Player, port: str, takes: int) -> tuple[list[float], float]:
    """CC74 → audible change (ms) per aligned take, and the largest difference (dB re the
    note's RMS) of a take from the untouched one before its jump: a take over CHANGE_DB there
    did not align (a block lost to an xrun) and is left out."""
    start = [(0.0, [0xB1, 10, 0]), (0.0, [0xB1, 74, 0]), (0.05, [0x91, 60, 110])]
    end = [(1.1, [0x81, 60, 0])]
    reference, _, _ = take(player, port, [*start, *end], 1.3)
    ref = reference.audio[:, 0].astype(np.float64)
    ref_on = onset(ref)
    delays, residual = [], []
    for k in range(takes):
        jump_s = JUMP_S + 0.0013 * k  # a different phase in the block each take
        capture, _, _ = take(player, port, [*start, (jump_s, [0xB1, 74, 127]), *end], 1.3)
        audio = capture.audio[:, 0].astype(np.float64)
        on = onset(audio)
        n = min(len(audio) - on, len(ref) - ref_on)
        diff = np.abs(audio[on : on + n] - ref[ref_on : ref_on + n])
        held = ref[ref_on + round(0.3 * RATE) : ref_on + round(0.55 * RATE)]
        level = float(np.sqrt(np.mean(held**2))) * 10 ** (CHANGE_DB / 20)
        sent_frame = capture.frame_at(capture.sent_s[3]) - on  # the jump, in note frames
        search = max(sent_frame - bench_live.BLOCK, 0)
        before = diff[round(0.1 * RATE) : search].max()
        residual.append(20 * np.log10(max(before, 1e-12) / level) + CHANGE_DB)
        if before > level:  # the takes do not align (a block lost to an xrun): left out
            continue
        changed = np.flatnonzero(diff[search:] > level)
        if len(changed):
            delays.append(1e3 * (capture.wall_s(on + search + int(changed[0])) - capture.sent_s[3]))
    return delays, float(max(residual))


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
    """The floor, the player with MPE off and on, and the floor again, on one fresh server: the
    floor's change between its two runs is what this machine moves by in the meantime."""
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
        floor_again = bench_live.floor_run(block, notes)
    return [("floor", floor), ("MPE off", off), ("MPE on", on), ("floor 2", floor_again)]


def changes(a: dict[str, object], b: dict[str, object]) -> tuple[float, float, int]:
    """b − a: latency median and max (ms), xruns."""
    ms_a, ms_b = a["latencies_ms"], b["latencies_ms"]
    return (
        statistics.median(ms_b) - statistics.median(ms_a),
        max(ms_b) - max(ms_a),
        b["xruns"] - a["xruns"],
    )


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
            player, port = bench_live.new_player(
                model,
                argparse.Namespace(renderer=DEFAULT_RENDERER),
                notes,
                Sounds(pad()),
                knobs=knobs,
                sample_rate=RATE,
                mpe="lower",
            )
            with player:
                warm(player, {60: True, 64: False})
                distances, dirty_independence = independence(player, port, args.takes)
                click_rows = sweep_clicks(player, port, args.takes)
                delays, residual = response(player, port, args.takes)
    print(
        f"bench_mpe: {name}, slow-pad looping (release {RELEASE_S:g} s), slide → knob 1, jackd "
        f"dummy {RATE} Hz 128 frames {'non-RT' if args.no_realtime else 'RT'}; load "
        f"{os.getloadavg()[0]:.1f}, {len(os.sched_getaffinity(0))} cores shared; takes with an "
        f"xrun taken again (up to {TRIES} tries)"
    )
    print(
        f"1. independence, log-spectral distance dB (median of {args.takes} rounds; "
        f"{dirty_independence} takes kept an xrun)"
    )
    print(f"   {'measure':<13} {'sliding':>8} {'held':>6} {'untouched':>9} {'slide/held':>10}")
    for measure, sliding, held, noise in distances:
        print(
            f"   {measure:<13} {sliding:>8.2f} {held:>6.2f} {noise:>9.2f} "
            + (f"{sliding / held:>10.1f}x" if held >= 0.005 else f"{'held = untouched':>10}")
        )
    print(
        f"2. clicks over a {SWEEP_S:g} s CC74 sweep (ch 2 left, ch 3 right held), median of "
        f"{args.takes} takes each; own: not on the other side within {SHARED_MS} ms"
    )
    for label, left, right, left_own, right_own, kept, tries in click_rows:
        print(
            f"   {label:<20} left {left:>4g} (own {left_own:g})  right {right:>4g} "
            f"(own {right_own:g}); xruns in the takes kept {kept}, {tries} tries"
        )
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
    rows = dict(cost(model, args.floor_notes, not args.no_realtime))
    print(f"4. cost at 128 frames, {args.floor_notes} notes, one server")
    print(f"   {'who':<8} {'lat med ms':>10} {'lat max ms':>10} {'xruns':>6} {'missed':>6}")
    for who, run in rows.items():
        ms = run["latencies_ms"]
        print(
            f"   {who:<8} {statistics.median(ms):>10.2f} {max(ms):>10.2f} {run['xruns']:>6} "
            f"{run['missed']:>6}"
        )
    mpe = changes(rows["MPE off"], rows["MPE on"])
    floor = changes(rows["floor"], rows["floor 2"])
    print(
        f"   MPE on − off:   median {mpe[0]:+.2f} ms, max {mpe[1]:+.2f} ms, xruns {mpe[2]:+d}\n"
        f"   floor 2 − floor: median {floor[0]:+.2f} ms, max {floor[1]:+.2f} ms, xruns "
        f"{floor[2]:+d} (the machine's own drift over the run)"
    )
    half_period_ms = 1e3 * bench_live.BLOCK / RATE / 2
    floor_xruns = max(rows["floor"]["xruns"], rows["floor 2"]["xruns"])
    within = abs(mpe[0]) <= max(abs(floor[0]), half_period_ms) and mpe[2] <= floor_xruns
    print(f"   MPE's cost within the floor of this run: {'yes' if within else 'no'}")


if __name__ == "__main__":
    main()
