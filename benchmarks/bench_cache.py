"""Note-cache figures: fill rate against the raw generator, cold request → ready, memory per preset.

    python benchmarks/bench_cache.py --model MODEL.onnx [--sample-rate 48000] [--batch-size 4]

Fill and raw generator runs alternate over the same notes (one preset's pitches, one timbre) so a
busy machine affects both alike; each figure is the median of ``--repeats`` runs. Rates are given
per wall second and per process CPU second: the latter is what to trust on a shared machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansynth_instrument.model.latent import random_latent
from gansynth_instrument.model.runtime import Model, load_model
from gansynth_instrument.notes.cache import DEFAULT_BATCH_SIZE, NoteCache
from gansynth_instrument.notes.note_queue import Priority

WAIT_S = 3600.0


@dataclass(frozen=True)
class Timing:
    """Wall seconds and process CPU seconds (all threads): on a shared machine the CPU time
    per note stays put while the wall time swings with the other jobs' load."""

    wall_s: float
    cpu_s: float


class _Clock:
    def __enter__(self) -> _Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing = Timing(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def raw_generate(model: Model, z: np.ndarray, pitches: list[int], batch_size: int) -> Timing:
    """model.generate over all pitches in batches, as the renderer batches them."""
    with _Clock() as clock:
        for i in range(0, len(pitches), batch_size):
            chunk = pitches[i : i + batch_size]
            model.generate(np.repeat(z[None], len(chunk), axis=0), np.array(chunk, dtype=np.int64))
    return clock.timing


def fill(
    model: Model,
    z: np.ndarray,
    pitches: list[int],
    rate: int,
    cache_dir: Path | None,
    batch_size: int,
) -> Timing:
    """From requesting every pitch to all of them cached (render + resample + disk)."""
    with NoteCache(model, rate, cache_dir, batch_size=batch_size) as cache, _Clock() as clock:
        timbre = cache.request(z, pitches, Priority.BACKGROUND)
        if not cache.wait(timbre, pitches, WAIT_S):
            raise RuntimeError("cache fill did not finish")
    return clock.timing


def cold_note_s(model: Model, seed: int, rate: int, cache_dir: Path) -> float:
    """Seconds from request (WAITING) to ready for one note of a timbre never rendered before."""
    pitch = model.pitches[len(model.pitches) // 2]
    with NoteCache(model, rate, cache_dir) as cache:
        z = random_latent(seed, model.latent_size)
        start = time.perf_counter()
        timbre = cache.request(z, [pitch], Priority.WAITING)
        if not cache.wait(timbre, [pitch], WAIT_S):
            raise RuntimeError("note did not render")
        return time.perf_counter() - start


def preset_memory_bytes(model: Model, z: np.ndarray, rate: int) -> tuple[int, int]:
    """(sum of note arrays, traced heap growth) for one fully cached timbre, memory-only cache."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cache = NoteCache(model, rate, cache_dir=None)
    with cache:
        timbre = cache.request(z, model.pitches, Priority.BACKGROUND)
        cache.wait(timbre, model.pitches, WAIT_S)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    arrays = sum(cache.lookup(timbre, p).pcm.nbytes for p in model.pitches)
    return arrays, traced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: auto)")
    args = parser.parse_args()

    model = load_model(args.model, threads=args.threads)
    pitches = list(model.pitches)
    z = random_latent(1, model.latent_size)
    rate, batch = args.sample_rate, args.batch_size
    load_before = os.getloadavg()[0]
    raw_generate(model, z, pitches[:batch], batch)  # warm-up: first-run allocations

    raw: list[Timing] = []
    fills: dict[str, list[Timing]] = {"disk cache on": [], "memory only": [], "restart": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):  # adjacent runs, so each ratio compares like with like
            raw.append(raw_generate(model, z, pitches, batch))
            cache_dir = Path(tmp) / f"fill{i}"
            fills["disk cache on"].append(fill(model, z, pitches, rate, cache_dir, batch))
            fills["memory only"].append(fill(model, z, pitches, rate, None, batch))
            fills["restart"].append(fill(model, z, pitches, rate, cache_dir, batch))  # disk hits
        cold = [cold_note_s(model, 1000 + i, rate, Path(tmp) / "cold") for i in range(5)]
    arrays_bytes, traced_bytes = preset_memory_bytes(model, z, rate)

    n = len(pitches)

    def rates(timings: list[Timing]) -> str:
        wall = n / statistics.median(t.wall_s for t in timings)
        cpu = n / statistics.median(t.cpu_s for t in timings)
        return f"{wall:.2f} notes/s, {cpu:.2f} per CPU-s"

    def ratios(timings: list[Timing]) -> str:
        wall = statistics.median(r.wall_s / t.wall_s for r, t in zip(raw, timings, strict=True))
        cpu = statistics.median(r.cpu_s / t.cpu_s for r, t in zip(raw, timings, strict=True))
        return f"{wall:.2f} x raw (wall), {cpu:.2f} (CPU)"

    rows = [
        ("raw generator (model.generate, batched)", rates(raw), ""),
        (
            "cache fill, disk cache on",
            rates(fills["disk cache on"]),
            ratios(fills["disk cache on"]),
        ),
        ("cache fill, memory only", rates(fills["memory only"]), ratios(fills["memory only"])),
        ("restart: fill from disk cache", rates(fills["restart"]), ""),
        (
            "cold cache: request → ready, one note",
            f"{1000 * statistics.median(cold):.1f} ms",
            f"min {1000 * min(cold):.1f}, max {1000 * max(cold):.1f}",
        ),
        (
            f"memory per cached preset ({n} notes)",
            f"{arrays_bytes / 1e6:.1f} MB arrays",
            f"{traced_bytes / 1e6:.1f} MB traced heap",
        ),
    ]
    print(
        f"model {args.model.name} ({model.backend}), {n} pitches, output {rate} Hz, "
        f"batch {batch}, median of {args.repeats}, {os.cpu_count()} CPUs, "
        f"load avg {load_before:.1f} → {os.getloadavg()[0]:.1f}"
    )
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    for row in [("figure", "value", ""), tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
