"""General MIDI songs through the instrument beside FluidSynth: loudness, peaks, limiting, timing.

    python benchmarks/bench_songs.py [SONG.mid ...] [--seconds 100] [--model MODEL.onnx]
        [--cache-dir DIR] [--soundfont SF2] [--no-per-channel] [--live] [--json OUT.json]

Each song's first ``--seconds`` is rendered by the instrument
(``render_engine.render_midi_engine``, the default bank, default gain staging) and by FluidSynth
(pyfluidsynth at its defaults, gain 0.2; FluidR3_GM from Debian's fluid-soundfont-gm, else
TimGM6mb), both at 48 kHz stereo. Default songs:
three OpenMSX songs (Debian's openttd-openmsx). Per song, one row for the whole song, one without
channel 10 (drums) in either render, and one per channel that plays notes, rendered alone:

- ``LUFS``: integrated loudness (ITU-R BS.1770, pyloudnorm) of the instrument's mix as ``play``
  makes it (not normalised) and of FluidSynth's render;
- ``dBTP``: true peak, the peak of the signal oversampled 4× (scipy's ``resample_poly``);
- ``RMS diff``: the instrument's RMS minus FluidSynth's, in dB (issue 29: within 6 dB);
- ``limited %``: frames the instrument's master limiter turned down (the mix at live play's level);
- ``corr`` and ``lag ms``: the largest Pearson correlation of the two renders' onset envelopes
  (spectral flux of the log magnitude, 5 ms hops) within ±``MAX_LAG_S``, and the lag where it is
  (positive: the instrument is late).

``--live``: the excerpt is also played into ``gansynth-instrument play`` (default settings, a
private JACK dummy server at 48 kHz / 128 frames, MIDI from an rtmidi client on time, the left
output recorded: benchmarks/bench_quality.py's rig), after the renders have cached its notes;
one line per song gives the recording's peak, its RMS minus FluidSynth's left channel's, and the
share of frames play's limiter turned down (play's last line; the lead-in and tail count too).

Then the song as ``render`` writes it by default (``--loudness -16``), measured again from the file,
with the share of frames its true-peak limiter turned down (render's only limiter then).
Prints tables; nothing is asserted (tests/offline/test_songs.py runs it on an excerpt).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import fluidsynth
import mido
import numpy as np
import pyloudnorm
import soundfile as sf
from scipy.signal import resample_poly, stft

from gansynth_instrument.live.channels import CHANNELS, DRUM_CHANNEL
from gansynth_instrument.live.config import CacheConfig, EngineConfig, Sounds
from gansynth_instrument.model.runtime import Model, load_model, model_path
from gansynth_instrument.notes.disk_store import DEFAULT_CACHE_DIR
from gansynth_instrument.offline.loudness import DEFAULT_TARGET_LUFS
from gansynth_instrument.offline.midi_file import read_midi
from gansynth_instrument.offline.render_engine import (
    ENGINE_WAIT_S,
    RenderConfig,
    render_midi_engine,
)
from gansynth_instrument.presets.bank_files import find_bank
from gansynth_instrument.presets.preset_files import DEFAULT_BANK

RATE = 48000
REPO = Path(__file__).resolve().parent.parent
LIVE_LEAD_S = 0.5  # the song starts this long into the recording
LIVE_TAIL_S = 2.0
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
DEFAULT_SONGS = ("5432gone_redfarn.mid", "busy_schedule.mid", "chuggachugga.mid")
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
HOP = 240  # onset envelope: 5 ms at 48 kHz
WINDOW = 1024
MAX_LAG_S = 0.2
COLUMNS = (
    "what",
    "ours LUFS",
    "FS LUFS",
    "ours dBTP",
    "FS dBTP",
    "RMS diff",
    "limited %",
    "corr",
    "lag ms",
)


@dataclass(frozen=True)
class Row:
    """One line of a song's table (``COLUMNS``)."""

    what: str
    ours_lufs: float
    fs_lufs: float
    ours_dbtp: float
    fs_dbtp: float
    rms_diff_db: float
    limited_percent: float
    corr: float
    lag_ms: float

    def line(self) -> str:
        numbers = (
            self.ours_lufs,
            self.fs_lufs,
            self.ours_dbtp,
            self.fs_dbtp,
            self.rms_diff_db,
            self.limited_percent,
            self.corr,
        )
        shown = " ".join(f"{x:>9.2f}" for x in numbers)
        return f"{self.what:<10} {shown} {self.lag_ms:>9.0f}"


def excerpt(song: Path, seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``song`` as a type-0 file (notes still held then end there)."""
    ticks_per_s = 960  # 480 ticks per beat at the default 120 bpm
    track, held, now = mido.MidiTrack(), set(), 0.0
    last = 0
    for message in mido.MidiFile(song):
        now += message.time
        if now >= seconds:
            break
        if message.is_meta or message.type == "sysex":
            continue
        tick = round(now * ticks_per_s)
        track.append(message.copy(time=tick - last))
        last = tick
        if message.type == "note_on" and message.velocity:
            held.add((message.channel, message.note))
        elif message.type in ("note_on", "note_off"):
            held.discard((message.channel, message.note))
    end = round(seconds * ticks_per_s)
    for channel, note in sorted(held):
        track.append(mido.Message("note_off", channel=channel, note=note, time=end - last))
        last = end
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(track)
    mid.save(out)
    return out


def fluidsynth_render(song: Path, soundfont: Path, channels: Collection[int]) -> np.ndarray:
    """``song``'s events on ``channels`` through FluidSynth → float32 [frames, 2] (plus 2 s)."""
    synth = fluidsynth.Synth(samplerate=float(RATE))
    try:
        font = synth.sfload(str(soundfont))
        if font < 0:
            sys.exit(f"{soundfont}: FluidSynth cannot load it")
        # A General MIDI synth's power-on state: piano everywhere, the standard kit on channel 10
        # (pyfluidsynth's sfload leaves a channel with no preset until a program change).
        for channel in range(CHANNELS):
            synth.program_select(channel, font, 128 if channel == DRUM_CHANNEL else 0, 0)
        blocks, frame = [], 0
        for event in read_midi(song):
            status, channel = event.data[0] & 0xF0, event.data[0] & 0x0F
            if channel not in channels or status < 0x80 or status >= 0xF0:
                continue
            due = round(event.time_s * RATE)
            if due > frame:
                blocks.append(synth.get_samples(due - frame))
                frame = due
            data = event.data
            if status == 0x90:
                synth.noteon(channel, data[1], data[2])
            elif status == 0x80:
                synth.noteoff(channel, data[1])
            elif status == 0xB0:
                synth.cc(channel, data[1], data[2])
            elif status == 0xC0:
                synth.program_change(channel, data[1])
            elif status == 0xE0:
                synth.pitch_bend(channel, (data[2] << 7 | data[1]) - 8192)
        blocks.append(synth.get_samples(2 * RATE))
    finally:
        synth.delete()
    return np.concatenate(blocks).reshape(-1, 2).astype(np.float32) / 32768


def true_peak_dbtp(audio: np.ndarray) -> float:
    """The peak of ``audio`` oversampled 4× (BS.1770-4 Annex 2), in dBTP."""
    top = float(np.abs(resample_poly(audio, 4, 1, axis=0)).max()) if len(audio) else 0.0
    return 20 * math.log10(top) if top > 0 else -math.inf


def lufs(audio: np.ndarray) -> float:
    return float(pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64)))


def rms_db(audio: np.ndarray) -> float:
    """RMS over the whole render and both channels, in dBFS."""
    mean_square = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def onset_envelope(audio: np.ndarray) -> np.ndarray:
    """Spectral flux: the positive change of log magnitude summed over frequency, per hop."""
    _, _, spectrum = stft(audio.mean(axis=1), RATE, nperseg=WINDOW, noverlap=WINDOW - HOP)
    log_magnitude = np.log1p(1000 * np.abs(spectrum))
    return np.maximum(np.diff(log_magnitude, axis=1), 0.0).sum(axis=0)


def best_lag(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(largest Pearson correlation within ±``MAX_LAG_S``, its lag in ms: ours later > 0)."""
    reach = round(MAX_LAG_S * RATE / HOP)
    length = min(len(ours), len(theirs))
    a, b = ours[:length], theirs[:length]
    best = (-math.inf, 0.0)
    for lag in range(-reach, reach + 1):
        x, y = (a[lag:], b[: length - lag]) if lag >= 0 else (a[: length + lag], b[-lag:])
        if x.std() == 0 or y.std() == 0:
            continue
        corr = float(np.corrcoef(x, y)[0, 1])
        if corr > best[0]:
            best = (corr, lag * HOP / RATE * 1000)
    return best if math.isfinite(best[0]) else (math.nan, math.nan)


def compare(what: str, ours: np.ndarray, limited: int, fs: np.ndarray) -> Row:
    """The row for one pair of renders (the shorter padded with silence)."""
    length = max(len(ours), len(fs))
    ours = np.pad(ours, ((0, length - len(ours)), (0, 0)))
    fs = np.pad(fs, ((0, length - len(fs)), (0, 0)))
    corr, lag = best_lag(onset_envelope(ours), onset_envelope(fs))
    return Row(
        what,
        lufs(ours),
        lufs(fs),
        true_peak_dbtp(ours),
        true_peak_dbtp(fs),
        rms_db(ours) - rms_db(fs),
        100 * limited / max(1, len(ours)),
        corr,
        lag,
    )


def song_channels(song: Path) -> list[int]:
    """The channels (0-15) that play a note in ``song``."""
    return sorted({e.data[0] & 0x0F for e in read_midi(song) if e.data[0] & 0xF0 == 0x90})


def bench_song(
    model: Model,
    song: Path,
    soundfont: Path,
    tmp: Path,
    cache_dir: Path,
    per_channel: bool,
) -> tuple[list[Row], dict[str, float]]:
    """A song's rows, and the render at the default loudness target measured from its file."""
    bank = find_bank(DEFAULT_BANK, model=model.info)
    everything = set(range(CHANNELS))
    played = song_channels(song)
    cases = [("all", everything), ("no drums", everything - {DRUM_CHANNEL})]
    if per_channel:
        cases += [(f"ch {c + 1}", {c}) for c in played]
    rows = []
    for what, channels in cases:
        out = tmp / "ours.wav"
        result = render_midi_engine(
            model,
            song,
            out,
            Sounds(bank=bank),
            RenderConfig(
                EngineConfig(channels=channels, wait_s=ENGINE_WAIT_S),
                CacheConfig(cache_dir),
                sample_rate=RATE,
                progress=False,
            ),
        )
        ours = sf.read(out, dtype="float32", always_2d=True)[0]
        fs = fluidsynth_render(song, soundfont, channels)
        rows.append(compare(what, ours, result.limited_frames, fs))
    target = tmp / "rendered.wav"
    result = render_midi_engine(
        model,
        song,
        target,
        Sounds(bank=bank),
        RenderConfig(
            cache=CacheConfig(cache_dir),
            sample_rate=RATE,
            progress=False,
            loudness=DEFAULT_TARGET_LUFS,
        ),
    )
    written = sf.read(target, dtype="float32", always_2d=True)[0]
    rendered = {
        "gain dB": result.normalisation.gain_db if result.normalisation else 0.0,
        "limited %": result.normalisation.limited_percent if result.normalisation else 0.0,
        "LUFS": lufs(written),
        "dBTP": true_peak_dbtp(written),
    }
    return rows, rendered


def live_row(model: Path, song: Path, seconds: float, cache_dir: Path, fs: np.ndarray) -> str:
    """``song`` played live into ``play`` (bench_quality.py's rig): its peak, RMS difference and
    the share of frames play's limiter turned down (play's last line)."""
    sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]
    from bench_quality import BLOCK, Rig
    from jackrig import JackServer

    script = [(e.time_s + LIVE_LEAD_S, list(e.data)) for e in read_midi(song) if e.data[0] < 0xF0]
    with (
        tempfile.TemporaryDirectory() as tmp,
        JackServer(sample_rate=RATE, period_frames=BLOCK, realtime=True, sync=True) as server,
    ):
        rig = Rig(model, cache_dir, [], Path(tmp) / "play.log")
        try:
            time.sleep(1.5)
            audio, xruns = rig.play(server, seconds + LIVE_LEAD_S + LIVE_TAIL_S, script)
            rig.process.send_signal(signal.SIGINT)  # play's last line: the limiter's share
            rig.process.wait(timeout=60)
            limited = re.search(r"limiter on ([\d.]+) %", rig.tail())
        finally:
            rig.close()
    audio = audio.astype(np.float64)
    peak = 20 * math.log10(max(float(np.abs(audio).max()), 1e-12))
    ours = 10 * math.log10(max(float(np.mean(audio**2)), 1e-24))
    theirs = 10 * math.log10(max(float(np.mean(fs[:, 0].astype(np.float64) ** 2)), 1e-24))
    # Both over the song's length: the recording's lead-in and FluidSynth's tail are silence.
    ours += 10 * math.log10(len(audio) / len(fs))
    share = f"limiter on {limited[1]} % of frames" if limited else "limiter share not reported"
    return (
        f"live (play): peak {peak:.2f} dBFS, RMS diff {ours - theirs:+.2f} dB, {share}, "
        f"{xruns} xruns"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("songs", nargs="*", type=Path, help="General MIDI files (default: OpenMSX)")
    parser.add_argument("--seconds", type=float, default=100.0, help="excerpt length (100)")
    parser.add_argument("--model", help="model (default: the bundled one)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--soundfont", type=Path, help="default: FluidR3_GM, else TimGM6mb")
    parser.add_argument("--no-per-channel", action="store_true", help="whole songs only")
    parser.add_argument("--live", action="store_true", help="also play each song into play")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    songs = args.songs or [OPENMSX / name for name in DEFAULT_SONGS]
    soundfont = args.soundfont or next((p for p in SOUNDFONTS if p.is_file()), None)
    if soundfont is None:
        sys.exit("no General MIDI soundfont: apt-get install fluid-soundfont-gm")
    model = load_model(model_path(args.model))
    print(f"FluidSynth soundfont: {soundfont}; model: {args.model or 'bundled'}")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for song in songs:
            part = excerpt(song, args.seconds, tmp / "excerpt.mid")
            rows, rendered = bench_song(
                model, part, soundfont, tmp, args.cache_dir, not args.no_per_channel
            )
            print(f"\n{song.name} (first {args.seconds:g} s)")
            print(f"{COLUMNS[0]:<10} " + " ".join(f"{c:>9}" for c in COLUMNS[1:]))
            print("\n".join(row.line() for row in rows))
            print(
                f"rendered at {DEFAULT_TARGET_LUFS:g} LUFS: gain {rendered['gain dB']:+.2f} dB, "
                f"file {rendered['LUFS']:.2f} LUFS, true peak {rendered['dBTP']:.2f} dBTP, "
                f"true-peak limited {rendered['limited %']:.2f} % of frames"
            )
            figures[song.name] = {"rows": [asdict(r) for r in rows], "rendered": rendered}
            if args.live:
                fs = fluidsynth_render(part, soundfont, set(range(CHANNELS)))
                path = model_path(args.model)
                print(live_row(path, part, args.seconds, args.cache_dir, fs))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
