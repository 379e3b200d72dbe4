"""Sample-pack bake time against the time to make the same notes (issue 17's bar: a 61-pitch
preset at 48 kHz / 24-bit bakes in under its notes' time plus 2 s).

    python benchmarks/bench_bake.py [--model MODEL.onnx] [--preset felt-keys] [--repeats 5]

Each repeat makes the preset's notes into an empty cache (``cache warm``'s function: the floor)
and bakes the preset from another empty cache (notes made and written), in alternating order so
a busy machine affects both alike, then bakes again from that now warm cache (writing only).
The table gives median and max wall seconds, and process CPU seconds (all threads), which a
shared machine's other jobs disturb less.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from gansynth_instrument.model.runtime import BUNDLED_MODEL, load_model
from gansynth_instrument.notes.cache import warm
from gansynth_instrument.offline.bake import bake
from gansynth_instrument.presets.preset_files import find_preset

RATE = 48000
BIT_DEPTH = 24
ALLOWANCE_S = 2.0
FLOOR, COLD, WARM = "make notes (floor)", "bake, cold cache", "bake, warm cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="default: the bundled model")
    parser.add_argument("--preset", default="felt-keys")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model_path = args.model or BUNDLED_MODEL
    model = load_model(model_path)
    preset = find_preset(args.preset)
    latent = preset.latent_vector(model.latent_size)
    model.generate(latent[None], [model.pitches[0]])  # first-call set-up outside the timings
    wall: dict[str, list[float]] = {FLOOR: [], COLD: [], WARM: []}
    cpu: dict[str, list[float]] = {FLOOR: [], COLD: [], WARM: []}

    def timed(label: str, run: object) -> None:
        start, start_cpu = time.perf_counter(), time.process_time()
        run()  # type: ignore[operator]
        wall[label].append(time.perf_counter() - start)
        cpu[label].append(time.process_time() - start_cpu)

    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)

            def floor(root: Path = root) -> None:
                warm(model, {preset.name: latent}, RATE, root / "floor")

            def pack(root: Path = root) -> None:
                bake(
                    model,
                    root / "pack",
                    [preset],
                    rate=RATE,
                    bit_depth=BIT_DEPTH,
                    cache_dir=root / "notes",
                    progress=False,
                )

            first, second = ((FLOOR, floor), (COLD, pack))[:: 1 if repeat % 2 == 0 else -1]
            timed(*first)
            timed(*second)
            timed(WARM, pack)
    print(
        f"{len(model.pitches)} pitches of '{preset.name}', {RATE} Hz, {BIT_DEPTH}-bit, "
        f"{args.repeats} repeats, model {model_path.name} on {model.backend}"
    )
    print(
        f"{'what':<20} {'wall median':>11} {'max':>6} {'- floor':>8} {'cpu median':>11} "
        f"{'- floor':>8}  wall per run"
    )
    floor_wall, floor_cpu = statistics.median(wall[FLOOR]), statistics.median(cpu[FLOOR])
    for label in wall:
        w, c = statistics.median(wall[label]), statistics.median(cpu[label])
        runs = " ".join(f"{t:.2f}" for t in wall[label])
        print(
            f"{label:<20} {w:>11.2f} {max(wall[label]):>6.2f} {w - floor_wall:>+8.2f} "
            f"{c:>11.2f} {c - floor_cpu:>+8.2f}  {runs}"
        )
    cold = statistics.median(wall[COLD])
    verdict = "within" if cold < floor_wall + ALLOWANCE_S else "OVER"
    print(
        f"bake from a cold cache {cold:.2f} s; its notes {floor_wall:.2f} s "
        f"+ {ALLOWANCE_S:.0f} s = {floor_wall + ALLOWANCE_S:.2f} s: {verdict}"
    )


if __name__ == "__main__":
    main()
