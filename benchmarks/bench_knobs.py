"""Timbre-knob figures (issue 18): do the knob directions mean something, and does a saved timbre
come back exactly?

    python benchmarks/bench_knobs.py [--model MODEL.onnx] [--starts 16] [--offset 2.0]
                                     [--first-seed 1000] [--first-note-only]

For each of ``--starts`` random starting timbres (seeds ``--first-seed``, +1, ...: another set
checks that the figures do not hold for one set only) and one pitch, notes are
made at the start, moved ``--offset`` standard deviations along each knob, and moved the same
distance along a random unit direction (a fresh one per start); for knobs 1-4 also at
``-offset``, so a knob's effect is measured over its travel from one side to the other. Printed:

* the PCA itself: seconds to compute the directions (no disk cache), variance share per knob;
* the knobs' orientation (``knob_qualities.orient``, what a first play adds to the PCA): seconds,
  and the quality each knob's + side raises, with its t statistic;
* per knob, the mean log-spectral change (mean |Δ| of the STFT magnitude in dB, floored 80 dB
  below the louder note's peak) and its ratio to the random direction's, the baseline measured
  in the same run;
* for knobs 1-4, turned from −offset to +offset, the share of starts whose spectral centroid,
  and whose decay time (peak to −20 dB of the 10 ms RMS envelope), move the same way: the issue
  asks ≥ 80 % for either;
* a timbre moved by knobs, saved as a preset (atomically, into a temporary user dir) and loaded
  back, rendered again: bit-identical or not;
* clicks while a held C4 is swept (0 → 127 → 0 in 3 s, 86 messages) by knob 1, by the pad's x
  controller (the four ``fluid-*`` corners below), and by the bank's morph for reference, beside the
  same held note untouched: the instrument's engine and mixer in this process at 48 kHz in
  128-frame blocks, every note the sweep passes already cached. A click is a run of 1 ms frames
  whose energy above 10 kHz (8th-order Butterworth) exceeds −40 dB relative to the held note's RMS,
  as the live-quality measurements count them (the model makes nothing above 8 kHz);
* a new random timbre's first exact note, as live play makes it: the instrument's engine with the
  renderer process (``play``'s default, one CPU thread as live), a chord played and cached, then
  ``--fresh`` times: the random-timbre button, 50 ms later a note-on (alternately a pitch of the
  chord, played last, and one it did not have), and the time until the engine starts its exact
  note, polled every 2 ms as the player does (``Engine.start_pending``). Earlier draws' other
  pitches are still queued behind, as when exploring. The floor beside it, measured in the same
  run: one note made at batch 1 by this process's model.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import signal

from gansynth_instrument.live.config import CacheConfig, Sounds
from gansynth_instrument.live.engine import RANDOM_CC
from gansynth_instrument.live.instrument import assemble
from gansynth_instrument.live.mixer import Mixer
from gansynth_instrument.live.player import live_render_threads
from gansynth_instrument.model.knob_qualities import knob_summary, orient
from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import BUNDLED_MODEL, Model, load_model
from gansynth_instrument.notes.note_queue import Priority
from gansynth_instrument.notes.timbre import Timbre
from gansynth_instrument.presets.bank import Bank
from gansynth_instrument.presets.explore import save_found
from gansynth_instrument.presets.ganspace import KNOB_COUNT, KnobDirections, compute_directions
from gansynth_instrument.presets.knobs import KNOB_CCS, describe
from gansynth_instrument.presets.preset_files import find_preset

FLOOR_DB = 80.0
DECAY_DB = 20.0
SIGN_TARGET = 0.8
N_FFT, HOP = 1024, 256


def spectrum_db(note: np.ndarray, sample_rate: int) -> np.ndarray:
    """STFT magnitude in dB [freq, frames]."""
    _, _, z = signal.stft(note, sample_rate, nperseg=N_FFT, noverlap=N_FFT - HOP)
    return 20.0 * np.log10(np.abs(z) + 1e-12)


def log_spectral_change(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean absolute dB difference, both floored FLOOR_DB under the louder one's peak (so
    differences in inaudible noise do not count)."""
    sa, sb = spectrum_db(a, sample_rate), spectrum_db(b, sample_rate)
    floor = max(sa.max(), sb.max()) - FLOOR_DB
    return float(np.mean(np.abs(np.maximum(sa, floor) - np.maximum(sb, floor))))


def centroid_hz(note: np.ndarray, sample_rate: int) -> float:
    """Power-weighted mean frequency of the whole note."""
    power = np.abs(np.fft.rfft(note)) ** 2
    freqs = np.fft.rfftfreq(len(note), 1.0 / sample_rate)
    return float((freqs * power).sum() / max(power.sum(), 1e-30))


def decay_s(note: np.ndarray, sample_rate: int) -> float:
    """Seconds from the 10 ms RMS envelope's peak until it is DECAY_DB below it (or the end)."""
    frame = sample_rate // 100
    frames = note[: len(note) // frame * frame].reshape(-1, frame)
    level = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    peak = int(level.argmax())
    below = np.nonzero(level[peak:] < level[peak] - DECAY_DB)[0]
    end = below[0] if len(below) else len(level) - peak
    return end * frame / sample_rate


def sign_share(changes: list[float]) -> float:
    """The share of changes with the more common sign (zeros count against)."""
    up = sum(c > 0 for c in changes)
    down = sum(c < 0 for c in changes)
    return max(up, down) / len(changes)


def clicks(audio: np.ndarray, reference_rms: float, rate: int) -> int:
    """Runs of 1 ms frames whose energy above 10 kHz exceeds −40 dB re ``reference_rms``."""
    sos = signal.butter(8, 10_000, "highpass", fs=rate, output="sos")
    high = signal.sosfilt(sos, audio)
    frame = rate // 1000
    rms = np.sqrt(np.mean(high[: len(high) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = rms > reference_rms * 10 ** (-40 / 20)
    return int(np.sum(loud[1:] & ~loud[:-1]) + loud[0])


def sweep_clicks(model: Model, knobs: KnobDirections, pitch: int = 60) -> list[tuple[str, int]]:
    """(what, clicks) for a held note swept by each controller, and left alone."""
    corners = ("fluid-piano", "fluid-flute", "fluid-violin", "fluid-trumpet")
    bank = Bank(
        "bench", {0: corners[0]}, morph_path=("felt-keys", "glass-bell"), pad_corners=corners
    )
    rate, block, start, sweep = 48000, 128, 24000, 3 * 48000
    values = np.rint(np.concatenate([np.linspace(0, 127, 43), np.linspace(127, 0, 43)]))
    times = start + np.arange(86) * sweep // 86
    rows = []
    for what, cc in (("untouched", None), ("knob 1", KNOB_CCS[0]), ("pad x", 16), ("morph", 1)):
        mixer = Mixer(rate, polyphony=8, channels=1)
        inst = assemble(model, mixer, Sounds(bank=bank), cache=CacheConfig(None), knobs=knobs)
        engine, space = inst.engine, inst.engine.space
        assert space is not None
        # Every timbre the sweep passes is cached before it starts; the knob and the pad move
        # from corner A (the pad at x = 0, y = 0, the knob at its centre).
        needed = [engine.timbre, *engine.morph, *space.move_pad(0, 0)[0]]
        needed += [t for v in range(128) for t in space.turn(0, v)[0]] if cc == KNOB_CCS[0] else []
        space.turn(0, 64)
        needed += [t for v in range(128) for t in space.move_pad(0, v)[0]] if cc == 16 else []
        with inst.cache:
            for t in {t.key: t for t in needed}.values():
                inst.cache.request(t.latent, [pitch], Priority.WAITING)
                assert inst.cache.wait(t.key, [pitch], 600)
            engine.handle([0xB0, 16, 0])
            engine.handle([0xB0, cc if cc is not None else 1, 0])  # where the sweep starts
            engine.handle([0x90, pitch, 100])
            out = np.zeros((start + sweep + rate // 2, 1), np.float32)
            sent = 0
            for at in range(0, len(out), block):
                while cc is not None and sent < len(times) and times[sent] <= at:
                    engine.handle([0xB0, cc, int(values[sent])])
                    sent += 1
                mixer.mix(out[at : at + block], block)
        held_rms = float(np.sqrt(np.mean(out[rate // 10 : start, 0] ** 2)))
        rows.append((what, clicks(out[start : start + sweep, 0], held_rms, rate)))
    return rows


CHORD = (48, 55, 60, 64)
BLOCK = 1024
NEW_PITCH = 67  # not in CHORD, so not among the pitches a new timbre makes first


def first_note_ms(model: Model, fresh: int) -> tuple[dict[str, list[float]], float]:
    """({"played last": ms, "not played": ms} note-on → exact note started, ``fresh`` draws in
    all), and the floor: the median of 5 single notes made in this process, in ms."""
    floor = []
    for i in range(5):
        t0 = time.perf_counter()
        model.generate(random_latent(900 + i, model.latent_size)[None], [60])
        floor.append(1e3 * (time.perf_counter() - t0))
    mixer = Mixer(48000, polyphony=16, channels=1)
    cache = CacheConfig(None, "process")
    inst = assemble(model, mixer, Sounds(find_preset("felt-keys")), cache=cache)
    engine = inst.engine
    times: dict[str, list[float]] = {"played last": [], "not played": []}
    with inst.cache as cache:
        key = engine.timbre.key
        cache.request(engine.timbre.latent, CHORD, Priority.WAITING)
        assert cache.wait(key, CHORD, 600)  # and the renderer process is up
        for pitch in CHORD:
            engine.handle([0x90, pitch, 100])
            engine.handle([0x80, pitch, 0])
        for i in range(fresh):
            engine.handle([0xB0, RANDOM_CC, 127])
            engine.handle([0xB0, RANDOM_CC, 0])
            time.sleep(0.05)
            pitch = CHORD[-1] if i % 2 == 0 else NEW_PITCH
            t0 = time.perf_counter()
            engine.handle([0x90, pitch, 100])
            while engine.start_pending():
                time.sleep(0.002)
            started = 1e3 * (time.perf_counter() - t0)
            if cache.lookup(engine.timbre.key, pitch) is None:
                started = math.inf  # dropped: still waiting after PENDING_S
            times["played last" if pitch in CHORD else "not played"].append(started)
            engine.handle([0x80, pitch, 0])
            mixer.mix(np.zeros((BLOCK, 1), np.float32), BLOCK)  # takes the engine's commands
    return times, statistics.median(floor)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def print_first_note(model: Model, fresh: int) -> None:
    times, floor = first_note_ms(model, fresh)
    every = [t for kind in times.values() for t in kind]
    print(
        f"\nnew random timbre's first exact note, note-on → started (renderer process), {fresh} "
        f"draws: median {statistics.median(every):.0f} ms, max {max(every):.0f} ms "
        f"(target ≤ 150 / ≤ 250 ms); one note alone here: {floor:.0f} ms"
    )
    for kind, values in times.items():
        print(
            f"  pitch {kind:<11} median {statistics.median(values):4.0f} ms, max "
            f"{max(values):4.0f} ms ({statistics.median(values) / floor:.1f}x one note)"
        )


def measure(
    model: Model, starts: int, offset: float, pitch: int, fresh: int, first_seed: int
) -> None:
    t0 = time.perf_counter()
    knobs = compute_directions(model, progress=True)
    pca_s = time.perf_counter() - t0
    rate = model.sample_rate
    print(f"model {model.path.name} ({model.backend}), digest {model.digest}")
    print(
        f"knob directions: {knobs.samples} latents at pitch {knobs.pitch}, {pca_s:.1f} s "
        "(computed, no disk cache)"
    )
    shares = "  ".join(f"{i + 1}:{r * 100:.2f}%" for i, r in enumerate(knobs.variance_ratio))
    print(f"variance share per knob: {shares}")
    t0 = time.perf_counter()
    found = orient(model, knobs.directions, progress=True)
    print(f"orientation: {time.perf_counter() - t0:.1f} s; + side: {knob_summary(found.qualities)}")
    print("  t statistics: " + "  ".join(f"{i + 1}:{t:.1f}" for i, t in enumerate(found.strengths)))

    rows = [*range(KNOB_COUNT), "random"]
    change: dict[object, list[float]] = {r: [] for r in rows}
    d_centroid: dict[int, list[float]] = {k: [] for k in range(4)}
    d_decay: dict[int, list[float]] = {k: [] for k in range(4)}
    for s in range(starts):
        z = random_latent(first_seed + s, model.latent_size)
        direction = unit(np.random.default_rng([18, s]).standard_normal(model.latent_size))
        batch = [z]
        for k in range(KNOB_COUNT):
            values = [0.0] * KNOB_COUNT
            values[k] = offset
            batch.append(knobs.move(z, values))
        batch.append((z.astype(np.float64) + offset * direction).astype(np.float32))
        for k in range(4):
            values = [0.0] * KNOB_COUNT
            values[k] = -offset
            batch.append(knobs.move(z, values))
        notes = model.generate(np.stack(batch), [pitch] * len(batch))
        base, ahead, behind = notes[0], notes[1 : len(rows) + 1], notes[len(rows) + 1 :]
        for r, note in zip(rows, ahead, strict=True):
            change[r].append(log_spectral_change(base, note, rate))
        for k in range(4):
            d_centroid[k].append(centroid_hz(ahead[k], rate) - centroid_hz(behind[k], rate))
            d_decay[k].append(decay_s(ahead[k], rate) - decay_s(behind[k], rate))

    random_mean = statistics.mean(change["random"])
    print(
        f"\nlog-spectral change, {starts} starts (seeds {first_seed}+), pitch {pitch}, "
        f"offset {offset:g} σ "
        "(mean |ΔdB| of the STFT)"
    )
    print(f"{'direction':<10} {'mean dB':>8} {'median':>8} {'max':>8} {'vs random':>10}")
    for r in rows:
        label = f"knob {r + 1}" if isinstance(r, int) else "random"
        values = change[r]
        print(
            f"{label:<10} {statistics.mean(values):8.2f} {statistics.median(values):8.2f} "
            f"{max(values):8.2f} {statistics.mean(values) / random_mean:9.2f}x"
        )
    print(
        f"\nsign consistency, knob turned {-offset:+g} → {offset:+g} σ, {starts} starts "
        f"(target ≥ {SIGN_TARGET:.0%} for either)"
    )
    print(f"{'knob':<6} {'centroid':>9} {'mean Δ Hz':>10} {'decay':>7} {'mean Δ s':>9}  ok")
    for k in range(4):
        c, d = sign_share(d_centroid[k]), sign_share(d_decay[k])
        print(
            f"{k + 1:<6} {c:9.0%} {statistics.mean(d_centroid[k]):+10.1f} {d:7.0%} "
            f"{statistics.mean(d_decay[k]):+9.3f}  {'yes' if max(c, d) >= SIGN_TARGET else 'NO'}"
        )

    offsets = (2.5, 0.0, -1.0)
    moved = knobs.move(random_latent(7, model.latent_size), offsets)
    pitches = [48, 60, 72]
    before = model.generate(np.repeat(moved[None], 3, axis=0), pitches)
    with tempfile.TemporaryDirectory() as tmp:
        found = Timbre("seed 7", moved)
        saved, path = save_found(found, note=describe(offsets), user_dir=Path(tmp))
        again = find_preset(str(path)).latent_vector(model.latent_size)
        after = model.generate(np.repeat(again[None], 3, axis=0), pitches)
    same = np.array_equal(before, after)
    print(
        f"\nsaved timbre ({saved.name}, {describe(offsets)}) reloaded and rendered at "
        f"{pitches}: {'bit-identical' if same else 'DIFFERENT'}"
    )

    print("\nclicks on a held C4 while a controller sweeps 0 → 127 → 0 in 3 s (86 messages)")
    for what, count in sweep_clicks(model, knobs):
        print(f"  {what:<10} {count:4d}")

    print_first_note(model, fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="default: bundled")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--starts", type=int, default=16, help="random starting timbres (16)")
    parser.add_argument("--offset", type=float, default=2.0, help="σ moved along each (2.0)")
    parser.add_argument("--pitch", type=int, default=60)
    parser.add_argument(
        "--first-seed", type=int, default=1000, help="seed of the first starting timbre (1000)"
    )
    parser.add_argument("--fresh", type=int, default=10, help="new timbres timed (10)")
    parser.add_argument(
        "--first-note-only", action="store_true", help="only the new timbre's first note"
    )
    args = parser.parse_args()
    model = load_model(args.model, backend=args.backend, threads=live_render_threads())
    if args.first_note_only:
        print_first_note(model, args.fresh)
    else:
        measure(model, args.starts, args.offset, args.pitch, args.fresh, args.first_seed)


if __name__ == "__main__":
    main()
