"""benchmarks/bench_songs.py (issue 29) on an excerpt of a real General MIDI song: it runs, and
its table has every column for the whole song, the song without drums and each channel alone,
with finite figures; the render at the default loudness target measures -16 ± 0.5 LUFS from its
file, true peak at most -1 dBTP. The song is OpenMSX's (Debian's openttd-openmsx, which .ci/run
installs); FluidSynth renders with TimGM6mb there (FluidR3_GM where installed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SONG = Path("/usr/share/games/openttd/baseset/openmsx/5432gone_redfarn.mid")
TIMEOUT_S = 600  # only bounds a hang; the excerpt takes well under a minute with notes cached


def test_bench_songs_prints_every_column_with_finite_figures(tiny_model, tmp_path):
    if not SONG.is_file():
        raise FileNotFoundError(f"{SONG}: install Debian's openttd-openmsx (.ci/run does)")
    out = tmp_path / "songs.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_songs.py"), str(SONG)]
    command += ["--seconds", "8", "--model", str(tiny_model), "--cache-dir", str(tmp_path / "c")]
    run = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)  # the table, for the CI log
    header = next(line for line in run.stdout.splitlines() if line.startswith("what"))
    for column in ("ours LUFS", "FS LUFS", "ours dBTP", "FS dBTP", "limited %", "corr", "lag ms"):
        assert column in header
    figures = json.loads(out.read_text())[SONG.name]
    rows = {row["what"]: row for row in figures["rows"]}
    # Channels 1-5 play the song's tunes and 10 its drums (tests/live/test_multitimbral.py).
    assert {"all", "no drums", "ch 1", "ch 2", "ch 10"} <= set(rows)
    for what, row in rows.items():
        sounding = [row["fs_lufs"], row["fs_dbtp"], row["limited_percent"]]
        if what != "ch 10":  # the instrument's drum channel is silent until it has a kit
            sounding += [row["ours_lufs"], row["ours_dbtp"], row["corr"], row["lag_ms"]]
        assert all(math.isfinite(x) for x in sounding), row
        assert 0.0 <= row["limited_percent"] <= 100.0
    rendered = figures["rendered"]
    assert abs(rendered["LUFS"] + 16.0) <= 0.5 and rendered["dBTP"] <= -1.0 + 0.05, rendered
