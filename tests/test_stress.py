"""The stress harness's short form (benchmarks/stress.py --short) as a CI check.

It runs in a child process with its own private JACK dummy server (48 kHz, 128 frames), the real
tiny model, the shipped default bank and an empty cache: a silent PortAudio client alone for 10 s
before and after (the machine's own xrun floor), 5 s idle, a 10 s flood of 1000 MIDI events/s,
then 20 s of mixed play while the cache renders.
Asserted: it does not crash or hang, the flood stays within an xrun budget, nothing is dropped or
fails, and resident memory grows by no more than the notes the cache took on (whose own ceiling,
the whole bank in memory, is printed by the harness).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOD_S, SOAK_S = 10.0, 20.0
TIMEOUT_S = 600  # only bounds a hang: setup (model, first preset) + 30 s of play + shutdown
# RSS that may come and go beside the note cache: allocator arenas, onnxruntime's per-batch-size
# buffers, Python objects of a few thousand MIDI events. A leak per event or per note grows
# past it within the soak (the soak adds ~60 MiB of notes on this model).
RSS_SLACK_MIB = 32.0
# Of the flood's callbacks: room for the machine's own floor (a silent JACK client's xruns, see
# the README's stress and soak section), while a callback that blocked, allocated or ran the
# model would xrun on most blocks.
XRUN_BUDGET_FRACTION = 0.002


def test_short_stress_run_survives_the_flood_and_the_soak(tiny_model: Path, tmp_path: Path):
    out = tmp_path / "stress.json"
    command = [sys.executable, str(REPO / "benchmarks" / "stress.py"), "--short"]
    command += ["--model", str(tiny_model), "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)  # the table, for the CI log
    report = json.loads(out.read_text())
    flood, soak = report["flood"], report["soak"]

    # The phases really ran: the events went out and the stream kept its pace.
    assert flood["events_sent"] >= 0.95 * 1000 * FLOOD_S
    assert soak["events_sent"] > 0
    for phase, seconds in ((flood, FLOOD_S), (soak, SOAK_S)):
        assert phase["callbacks"] >= 0.9 * seconds * 48000 / 128, phase
        assert phase["max_voices"] > 0, phase  # notes sounded
        assert phase["commands_dropped"] == 0, phase
        assert phase["midi_handler_errors"] == 0, phase
        assert phase["errors_logged"] == 0, (phase, report["log_examples"])
    assert report["stream_active_at_end"]

    # Xruns while the flood is handled (stream underflow flags and jackd's own count). Issue 7's
    # target is zero, but on a VM a client that only writes silence gets xruns too, beside busy
    # processes and in bursts while the host takes CPU time from the VM. So the bound is the
    # silent client's rate measured in this run, plus one xrun per block period of CPU time
    # stolen during the flood, plus a budget for what the instrument may add
    # (XRUN_BUDGET_FRACTION). On a quiet host the last term is all there is.
    allowed = XRUN_BUDGET_FRACTION + report["silent_xrun_fraction"]
    stolen_blocks = flood["stolen_ms"] / flood["block_period_ms"]
    budget = allowed * flood["callbacks"] + stolen_blocks
    assert flood["xruns"] <= budget and flood["jackd_xrun_lines"] <= budget, run.stdout

    # Memory: what the soak added is the cache's notes, and the cache stays within its ceiling.
    assert report["soak_growth_beyond_cache_mib"] <= RSS_SLACK_MIB, run.stdout
    assert report["cache_end_mib"] <= report["cache_cap_mib"]
    growth = report["rss_end_mib"] - report["rss_start_mib"]
    assert growth <= report["cache_end_mib"] - report["cache_start_mib"] + RSS_SLACK_MIB
