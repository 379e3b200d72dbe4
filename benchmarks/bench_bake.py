"""Sample-pack bake time against the time to make the same notes (issue 17's bar: a 61-pitch
preset at 48 kHz / 24-bit bakes in under its notes' time plus 2 s).

    python benchmarks/bench_bake.py [--model MODEL.onnx] [--preset felt-keys] [--repeats 3]

Each repeat makes the preset's notes into an empty cache (``cache warm``'s function: the floor),
then bakes the preset from another empty cache (notes made and written), then bakes again from
that now warm cache (writing only). Runs alternate so a busy machine affects all alike; the
table gives median and max wall seconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gansynth_instrument.bake import bake
from gansynth_instrument.cache import warm
from gansynth_instrument.model import BUNDLED_MODEL, load_model
from gansynth_instrument.presets import find_preset

RATE = 48000
BIT_DEPTH = 24
ALLOWANCE_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="default: the bundled model")
    parser.add_argument("--preset", default="felt-keys")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_path = args.model or BUNDLED_MODEL
    model = load_model(model_path)
    preset = find_preset(args.preset)
    latent = preset.latent_vector(model.latent_size)
    rows: dict[str, list[float]] = {
        "make notes (floor)": [],
        "bake, cold cache": [],
        "bake, warm cache": [],
    }
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = time.perf_counter()
            warm(model, {preset.name: latent}, RATE, root / "floor")
            rows["make notes (floor)"].append(time.perf_counter() - start)
            for label in ("bake, cold cache", "bake, warm cache"):
                start = time.perf_counter()
                bake(
                    model,
                    root / "pack",
                    [preset],
                    rate=RATE,
                    bit_depth=BIT_DEPTH,
                    cache_dir=root / "notes",
                    progress=False,
                )
                rows[label].append(time.perf_counter() - start)
    floor = statistics.median(rows["make notes (floor)"])
    print(
        f"{len(model.pitches)} pitches of '{preset.name}', {RATE} Hz, {BIT_DEPTH}-bit, "
        f"{args.repeats} repeats, model {model_path.name} on {model.backend}"
    )
    print(f"{'what':<22} {'median s':>9} {'max s':>8} {'- floor':>8}")
    for label, times in rows.items():
        median = statistics.median(times)
        print(f"{label:<22} {median:>9.2f} {max(times):>8.2f} {median - floor:>+8.2f}")
    cold = statistics.median(rows["bake, cold cache"])
    verdict = "within" if cold < floor + ALLOWANCE_S else "OVER"
    print(f"bake (cold) {cold:.2f} s vs notes {floor:.2f} s + {ALLOWANCE_S:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
