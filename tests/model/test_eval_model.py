"""benchmarks/eval_model.py, the place issue 16's model figures come from, run on the tiny model:
its pitch figure and its misses by pitch agree, note for note."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_misses_by_pitch_add_up_to_the_notes_out_of_tune(tiny_model: Path):
    command = [sys.executable, str(REPO / "benchmarks" / "eval_model.py")]
    command += ["--model", str(tiny_model), "--latents", "2"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    hits, total = map(int, re.search(r"^pitch: (\d+)/(\d+) = ", run.stdout, re.M).groups())
    header = "misses by pitch (pitch: latents missed, median semitones off):"
    by_pitch = lines[lines.index(header) + 1]
    missed = [int(n) for n in re.findall(r"\b\d+: (\d+) ", by_pitch)]
    pitches = int(re.search(r"^model .*: (\d+) pitches", run.stdout, re.M).group(1))
    assert total == 2 * pitches  # two latents, every pitch
    assert sum(missed) == total - hits, run.stdout
    assert all(1 <= n <= 2 for n in missed)
