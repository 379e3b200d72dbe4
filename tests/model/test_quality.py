"""Live quality (issue 14) as a CI check: benchmarks/bench_quality.py's figures against its floor.

It runs in a child process: ``gansynth-instrument play`` with the bundled model and the default
bank on a private JACK dummy server (48 kHz, 128 frames, -R, --sync), every note it plays warmed
into a fresh disk cache first, MIDI from an rtmidi JACK client, the output recorded by a JACK
client. Asserted, as the issue asks:
- a velocity-127 C4 of every program peaks within the target range; a 32-voice velocity-127 chord
  stays at or below 0 dBFS (the limiter);
- a 3 s knob sweep on a held note clicks at most once more than the same held note alone;
- a program change with ten notes while its preset loads makes no more xruns than the silent
  client recorded the same way in the same run, plus one (plus one per block period of CPU time
  the host stole from this VM meanwhile, as test_stress allows), and no clicks.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from gansynth_instrument.presets.preset_files import find_preset

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 3
TIMEOUT_S = 900  # only bounds a hang: warming ~1100 notes, then about two minutes of play
BLOCK_PERIOD_MS = 1e3 * 128 / 48000
# Issue 29: a velocity-127 note sounds between -12 and -3 dBFS, with room for a band above it.
# levels.TARGET_PEAK_DBFS (-12) levels each note by its peak over its start, as it sounds under
# the preset's attack (levels.attack_gain); no shipped preset is trimmed below gain_db 0, so this
# is the level a musician hears from each program.
TARGET_PEAK_DBFS = (-12.0 - 0.1, -3.0)  # 0.1 dB: a recorded peak between two samples


def test_levels_knob_and_switch_stay_at_the_floor(tmp_path: Path):
    out = tmp_path / "quality.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_quality.py")]
    command += ["--rounds", str(ROUNDS), "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)  # the table, for the CI log
    report = json.loads(out.read_text())
    rounds = report["rounds"]
    assert len(rounds) == ROUNDS

    low, high = TARGET_PEAK_DBFS
    peaks = report["c4_peak_dbfs"]
    assert len(peaks) >= 16  # every program of the default bank was heard
    assert all(low <= peak <= high for peak in peaks.values()), peaks
    assert all(find_preset(name).gain_db >= 0.0 for name in peaks)  # none trimmed below
    assert report["chord_peak_dbfs"] <= 0.0

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    assert median("knob_clicks") <= median("held_clicks") + 1, run.stdout
    assert median("switch_clicks") <= median("held_clicks"), run.stdout
    stolen_blocks = median("switch_stolen_ms") / BLOCK_PERIOD_MS
    budget = report["silent_xruns"] + 1 + stolen_blocks
    assert median("switch_xruns") <= budget, run.stdout
