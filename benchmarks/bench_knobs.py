"""Timbre-knob figures (issue 18): do the knob directions mean something, and does a saved timbre
come back exactly?

    python benchmarks/bench_knobs.py [--model MODEL.onnx] [--starts 16] [--offset 2.0]

For each of ``--starts`` random starting timbres (seeds 1000, 1001, ...) and one pitch, notes are
made at the start, moved ``--offset`` standard deviations along each knob, and moved the same
distance along a random unit direction (a fresh one per start); for knobs 1-4 also at
``-offset``, so a knob's effect is measured over its travel from one side to the other. Printed:

* the PCA itself: seconds to compute the directions (no disk cache), variance share per knob;
* per knob, the mean log-spectral change (mean |Δ| of the STFT magnitude in dB, floored 80 dB
  below the louder note's peak) and its ratio to the random direction's, the baseline measured
  in the same run;
* for knobs 1-4, turned from −offset to +offset, the share of starts whose spectral centroid,
  and whose decay time (peak to −20 dB of the 10 ms RMS envelope), move the same way: the issue
  asks ≥ 80 % for either;
* a timbre moved by knobs, saved as a preset (atomically, into a temporary user dir) and loaded
  back, rendered again: bit-identical or not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import signal

from gansynth_instrument.explore import save_found
from gansynth_instrument.ganspace import KNOB_COUNT, compute_directions
from gansynth_instrument.knobs import describe
from gansynth_instrument.latent import random_latent
from gansynth_instrument.model import BUNDLED_MODEL, Model, load_model
from gansynth_instrument.presets import find_preset
from gansynth_instrument.timbre import Timbre

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


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def measure(model: Model, starts: int, offset: float, pitch: int) -> None:
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

    rows = [*range(KNOB_COUNT), "random"]
    change: dict[object, list[float]] = {r: [] for r in rows}
    d_centroid: dict[int, list[float]] = {k: [] for k in range(4)}
    d_decay: dict[int, list[float]] = {k: [] for k in range(4)}
    for s in range(starts):
        z = random_latent(1000 + s, model.latent_size)
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
        f"\nlog-spectral change, {starts} starts, pitch {pitch}, offset {offset:g} σ "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="default: bundled")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--starts", type=int, default=16, help="random starting timbres (16)")
    parser.add_argument("--offset", type=float, default=2.0, help="σ moved along each (2.0)")
    parser.add_argument("--pitch", type=int, default=60)
    args = parser.parse_args()
    measure(load_model(args.model, backend=args.backend), args.starts, args.offset, args.pitch)


if __name__ == "__main__":
    main()
