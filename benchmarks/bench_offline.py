"""Offline-command figures: ``render --magenta`` against Magenta's own render, and wall times.

    python benchmarks/bench_offline.py --model TINY.onnx [--full-model FULL.onnx]

TINY.onnx must be the magenta-tiny fixture's export (``gansynth-instrument export
<fixtures>/magenta-tiny -o TINY.onnx``): its render of ``midi_input.mid`` with Magenta's seed is
compared sample by sample with ``midi_render.wav``. With ``--full-model`` (e.g. from ``export
--random``), the same 14-note song and a default hallucination (25 notes) are timed on it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from gansynth_instrument.model.runtime import load_model
from gansynth_instrument.offline.magenta import render_magenta
from gansynth_instrument.offline.render import Hallucination, hallucinate

FIXTURES = Path(os.environ.get("GANSYNTH_FIXTURES", Path(__file__).parents[2] / "shared/fixtures"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="magenta-tiny exported to ONNX")
    parser.add_argument("--full-model", type=Path, help="a full-size model to time")
    args = parser.parse_args()
    fixture = FIXTURES / "magenta-tiny"
    seed = int(np.load(fixture / "midi_render.npz")["seed"])
    expected, _ = sf.read(fixture / "midi_render.wav", dtype="float32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.wav"
        for label, path in (("tiny", args.model), ("full", args.full_model)):
            if path is None:
                continue
            model = load_model(path)
            start = time.perf_counter()
            result = render_magenta(model, fixture / "midi_input.mid", out, seed=seed)
            render_s = time.perf_counter() - start
            got, _ = sf.read(out, dtype="float32")
            diff = float(np.abs(got - expected).max()) if label == "tiny" else float("nan")
            start = time.perf_counter()
            _, notes, _ = hallucinate(model, Path(tmp) / "h.wav", Hallucination(), seed=0)
            hallucinate_s = time.perf_counter() - start
            rows.append((label, model.backend, result.notes, render_s, diff, notes, hallucinate_s))
    print("shared machine: other work may run at the same time; times are wall clock")
    print(
        f"{'model':<6} {'backend':<12} {'notes':>5} {'render s':>9} {'max|diff|':>10} "
        f"{'× peak':>8} {'halluc. notes':>13} {'halluc. s':>9}"
    )
    peak = float(np.abs(expected).max())
    for label, backend, notes, render_s, diff, h_notes, h_s in rows:
        print(
            f"{label:<6} {backend:<12} {notes:>5} {render_s:>9.2f} {diff:>10.2e} "
            f"{diff / peak:>8.2e} {h_notes:>13} {h_s:>9.2f}"
        )


if __name__ == "__main__":
    main()
