"""Render memory and speed against song length: a General MIDI song and the same song 30 times over.

    python benchmarks/bench_render.py [--model MODEL.onnx] [--song SONG.mid] [--repeats 30]

Each render is the real ``gansynth-instrument render`` command in a process of its own (peak RSS
from ``wait4``), on a note cache warmed by a first, untimed render of the short song, so the timed
renders play cached notes only. A one-note file's render is the floor (start-up: model, cache,
file), taken off the others' wall time for their time per second of music. The default song is
OpenMSX's ``5432gone_redfarn.mid`` (Debian's openttd-openmsx: six General MIDI tracks, drums on
channel 10). Prints a table: seconds of music, wall time, (wall − floor) per second of music, peak
RSS, and the long song's ratios to the short one's. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido

DEFAULT_SONG = Path("/usr/share/games/openttd/baseset/openmsx/5432gone_redfarn.mid")


def repeated(song: Path, times: int, out: Path) -> float:
    """``song`` played ``times`` times in a row as one type-0 file; its length in seconds."""
    src = mido.MidiFile(song)
    messages = [m for m in mido.merge_tracks(src.tracks) if m.type != "end_of_track"]
    track = mido.MidiTrack()
    for _ in range(times):
        track.extend(m.copy() for m in messages)
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=src.ticks_per_beat)
    mid.tracks.append(track)
    mid.save(out)
    return mid.length


def one_note(out: Path) -> float:
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=100)])
    track += [mido.Message("note_off", note=60, time=480), mido.MetaMessage("end_of_track")]
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(out)
    return mid.length


def render(argv: list[str]) -> tuple[float, float]:
    """Run one render command; (wall seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"render failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model (default: the bundled one)")
    parser.add_argument("--song", type=Path, default=DEFAULT_SONG)
    parser.add_argument("--repeats", type=int, default=30, help="long song = song × this (30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        songs = {name: tmp / f"{name}.mid" for name in ("floor", "short", "long")}
        lengths = {
            "floor": one_note(songs["floor"]),
            "short": repeated(args.song, 1, songs["short"]),
            "long": repeated(args.song, args.repeats, songs["long"]),
        }
        base = [sys.executable, "-m", "gansynth_instrument", "render"]
        base += ["--cache-dir", str(tmp / "cache")]
        base += ["--model", args.model] if args.model else []
        render([*base, str(songs["short"]), "-o", str(tmp / "warm.wav")])  # fills the note cache
        rows = {}
        for name, song in songs.items():
            rows[name] = render([*base, str(song), "-o", str(tmp / f"{name}.wav")])
            (tmp / f"{name}.wav").unlink()
    floor = rows["floor"][0]
    print(f"{'song':<6} {'music s':>8} {'wall s':>8} {'net s/music s':>14} {'peak RSS MiB':>13}")
    net = {}
    for name, (wall, rss) in rows.items():
        net[name] = (wall - floor) / lengths[name]
        shown = f"{net[name]:>14.4f}" if name != "floor" else f"{'(floor)':>14}"
        print(f"{name:<6} {lengths[name]:>8.1f} {wall:>8.1f} {shown} {rss:>13.0f}")
    ratio_rss = rows["long"][1] / rows["short"][1]
    print(f"long/short: net time per second of music ×{net['long'] / net['short']:.2f}, ", end="")
    print(f"peak RSS ×{ratio_rss:.2f}")


if __name__ == "__main__":
    main()
